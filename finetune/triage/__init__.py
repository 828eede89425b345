"""Training of the learned triage second opinion (``chatbot.triage.learned``)."""
