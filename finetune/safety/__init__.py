"""Training the meaning-based emergency detector (``chatbot.safety.detector``): data assembly
(``data``) and the fit with its fixed, versioned thresholds (``train``)."""
