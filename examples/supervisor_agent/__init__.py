"""A supervisor embedded in a long-running agent (``python -m examples.supervisor_agent.flow``)."""
