"""The two ids every vocabulary reserves, so samplers and models agree on them without a tokenizer."""

UNK = 0      # text the vocabulary has never seen (never sampled)
EOD = 1      # the boundary before every document; chat: between turns, and the start and end of a reply
