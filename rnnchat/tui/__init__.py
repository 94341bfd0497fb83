"""The Textual app. Everything here renders the core's event streams; no training logic lives here."""
