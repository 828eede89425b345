"""Training of the intent / emotion classifier (``medchat train classifier``). Never imported at
chat time: inference lives in ``chatbot.classifier`` and needs numpy only."""
