"""An A2A server whose auth hook names a principal per caller: tasks stay private."""
