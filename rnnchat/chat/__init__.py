"""The seq2seq chat model."""
