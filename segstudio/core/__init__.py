"""Qt-free, torch-free core: label sets, label conversion, metrics, errors."""
