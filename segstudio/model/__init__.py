"""Networks, model files and the predictor (torch lives here and in training/)."""
