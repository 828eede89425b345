"""MedChat consultation engine and the `medchat` command line."""
