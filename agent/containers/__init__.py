"""The agent's containers: records, their tasks in the runtime, and the Containers service."""
