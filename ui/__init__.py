"""The browser app (Gradio): patient chat, nurse triage console, admin. Layout and callbacks
only; the services come from ``chatbot.app``. Imported by ``medchat serve`` / ``medchat bench ui``
only, so the rest of MedChat never imports gradio. See docs/UI.md."""
