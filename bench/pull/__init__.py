"""Pull and push of a 200 MB image, kran against docker, through one local registry (`python -m bench.pull`)."""
