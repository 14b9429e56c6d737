"""From a trained model, or from samples, to verified closed-form laws."""
