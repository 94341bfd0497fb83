"""The classifier (many-to-one): a recurrent encoder reads a whole text and one linear layer names its label."""
