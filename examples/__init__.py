"""Examples runnable from the repository root (`greenbench run --model examples.resnet:build`)."""
