"""The end customer's portal: what a workspace publishes to it (`publishing`), and what
a portal user sees and does there (`customer`): the published workflows and agents,
their own runs, their approvals and their data, never anything else."""
