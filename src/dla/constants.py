"""Constants shared across layers of the package."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255  # label value left out of losses and metrics

# PCA of ImageNet pixel colours on the 0..1 scale, for AlexNet-style colour noise (Krizhevsky et al. 2012), as
# in fb.resnet.torch's datasets/imagenet.lua. Eigenvalues in decreasing order; IMAGENET_PCA_EIGVEC[c][k] is
# channel c (rows R, G, B) of eigenvector k (columns), so the RGB offset is eigvec @ (alpha * eigval).
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
