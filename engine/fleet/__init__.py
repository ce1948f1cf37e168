"""Fleet: many hosts. Which hosts a step's target means (hosts: inventory groups and
templated host lists), SSH connections (pool, ssh_config, host keys) and fan-out of one
step over the hosts of a target (`parallel`, `serial`, `max_failures`).

Layer: above executors. It may import `engine.executors`, `engine.language` and
`engine.templates`; never the run loop.
"""
