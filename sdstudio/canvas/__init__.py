"""The masking canvas: Qt painting of an image layer and a mask layer. Knows no engine."""
