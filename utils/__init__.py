"""Small helpers shared by every layer of the project (imports nothing of ours)."""
