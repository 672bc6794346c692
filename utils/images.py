"""The zoo's default image: 32x32 gray, the one owner of its size and shape.

The course's exam network reads 1024 inputs, a 32x32 single-channel image.
Every dataset loader produces this shape unless asked for another, and every
image model of the registry is built for it by default.
"""
IMAGE_SIZE = 32
IMAGE_CHANNELS = 1
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, IMAGE_CHANNELS)
