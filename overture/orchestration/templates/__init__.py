"""Agency templates: frozen snapshots of a workspace, provisioning from them, and
roll-outs of a new template version to the client workspaces made from it."""
