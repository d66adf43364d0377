"""Model contract: (features, logits), feature_dim, classifier."""

import pytest
import torch

from feddiff.models import build_model


@pytest.mark.parametrize(
    ("name", "channels", "size", "feature_dim"),
    [("cnn", 1, 8, 128), ("cnn", 1, 28, 128), ("cnn", 3, 32, 128), ("resnet10", 3, 32, 512)],
)
def test_models_return_features_and_logits(
    name: str, channels: int, size: int, feature_dim: int
) -> None:
    model = build_model(name, num_classes=7, in_channels=channels, image_size=size)
    feats, logits = model(torch.randn(2, channels, size, size))
    assert feats.shape == (2, feature_dim) == (2, model.feature_dim)
    assert logits.shape == (2, 7)
    assert isinstance(model.classifier, torch.nn.Linear)


def test_resnet10_structure_matches_feddifrc() -> None:
    model = build_model("resnet10", num_classes=10, in_channels=3, image_size=32)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert len(model.stages) == 4  # one basic block per stage
    assert [s.conv2.out_channels for s in model.stages] == [64, 128, 256, 512]
    half = build_model("resnet10", num_classes=10, in_channels=3, image_size=32, width=0.5)
    assert half.feature_dim == 256


def test_unknown_model_is_named() -> None:
    with pytest.raises(ValueError, match="training.model"):
        build_model("vgg", 10, 3, 32)
