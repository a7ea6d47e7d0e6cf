"""AI participants: Claude research agents on the Messages API, and a scripted agent."""
