"""Training code: classifier heads (issue 5), LoRA SFT (issue 6). Never imported at chat time."""
