"""Character-level language modelling: LSTM, layer-norm LSTM and Ha et al.'s HyperLSTM, corpora
readers, a truncated-BPTT trainer scored in bits per character, sampling, and suites."""
