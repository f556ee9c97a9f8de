"""File input and output: images, label maps, atomic writes. Never imports torch."""
