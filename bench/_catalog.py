"""Incident families the runbook generator draws from: real alerts, real shell commands.

Each family is one kind of incident (a full disk, a crash-looping deployment, ...) with
the probes that measure it, the commands responders look at during triage, and the
fixes that remediate it. `generate.py` combines these with generic steps (manual
questions, notifications, waits, variables, HTTP calls) into varied runbooks.

Commands may reference `inputs.NAME` only for names in the family's `inputs` (or the
common ones: host, service, threshold); the benchmark checks every generated file
validates cleanly, so a mistake here shows up at once.

`<n>`, `<secs>`, `<mins>`, `<size>`, `<days>`, `<depth>`, `<pct>`, `<nice>` and `<svc>` are
filled in per use (see generate.py), so runbooks differ the way hand-written ones do: the
same idea with other counts, sizes, periods and names. Without that, a thousand files would
hold only a few hundred distinct templates and the engine's template cache would make
validation look cheaper than it is on real files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Probe:
    """A measurement: detection confirms with `bad`, recovery polls until `good`."""

    name: str
    title: str
    command: str
    output: str
    parse: str  # expression over the step's own result, e.g. "stdout | trim | int"
    bad: str  # expression over outputs.OUTPUT, true when the alert is real
    good: str  # expression over the step's result, true once healthy again
    exit_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Look:
    """A triage command: read-only, gathers evidence."""

    name: str
    title: str
    command: str
    exit_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Fix:
    """A remediation command for one cause, with its undo when there is one."""

    name: str
    title: str
    command: str
    cause: str
    undo: str | None = None
    destructive: bool = False
    loop: tuple[str, ...] = ()  # for_each items; the command uses `item`


@dataclass(frozen=True)
class Family:
    slug: str
    title: str
    alert: str
    summary: str
    services: tuple[str, ...]
    threshold: tuple[int, int, str]  # low, high, unit description
    probes: tuple[Probe, ...]
    looks: tuple[Look, ...]
    fixes: tuple[Fix, ...]
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    local: bool = False  # commands run where the runbook runs (kubectl), not over SSH
    group: str = "app-servers"


PCT = "stdout | trim | int"

DISK = Family(
    slug="disk-full", title="Filesystem nearly full", alert="DiskUsageHigh",
    summary="A filesystem on a Linux host is above its usage threshold.",
    services=("postgresql", "nginx", "kafka", "elasticsearch", "rsyslog", "docker"),
    threshold=(80, 95, "Usage in percent that counts as full"),
    inputs={"mount": {"type": "string", "default": "/var", "description": "Mount point that alerted"}},
    probes=(
        Probe("usage", "Measure usage of the mount",
              "df --output=pcent {{ inputs.mount }} | tail -n1 | tr -dc 0-9", "pct", PCT,
              "outputs.pct | int >= inputs.threshold", "stdout | trim | int < inputs.threshold"),
        Probe("inodes", "Measure inode usage of the mount",
              "df --output=ipcent {{ inputs.mount }} | tail -n1 | tr -dc 0-9", "ipct", PCT,
              "outputs.ipct | int >= inputs.threshold", "stdout | trim | int < inputs.threshold"),
    ),
    looks=(
        Look("top_dirs", "Largest directories",
             "du -xh {{ inputs.mount }} --max-depth=<depth> 2>/dev/null | sort -rh | head -<n>"),
        Look("big_files", "Files over 500 MB",
             "find {{ inputs.mount }} -xdev -type f -size +<size>M -printf '%s %p\\n' 2>/dev/null"
             " | sort -rn | head -<n>"),
        Look("deleted_open", "Deleted files still held open",
             "lsof -nP +L1 2>/dev/null | awk 'NR>1 {print $1, $2, $7, $10}' | sort -k3 -rn | head -<n>",
             (0, 1)),
        Look("journal_size", "Size of the systemd journal", "journalctl --disk-usage"),
        Look("log_dir", "Biggest log files", "ls -lhS {{ inputs.mount }}/log/<svc> | head -<n>"),
    ),
    fixes=(
        Fix("compress_logs", "Compress large rotated logs",
            "find {{ inputs.mount }}/log -name '*.log.[0-9]' -size +<size>M -exec gzip -9 {} +", "logs"),
        Fix("vacuum_journal", "Shrink the systemd journal", "journalctl --vacuum-size=<size>M", "logs"),
        Fix("restart_holder", "Restart the service holding deleted files",
            "systemctl restart {{ inputs.service }}", "deleted_files"),
        Fix("purge_tmp", "Delete stale temporary files",
            "find {{ item }} -xdev -type f -mtime +<days> -delete", "data", destructive=True,
            loop=("/var/tmp", "/tmp", "/var/cache/apt/archives")),
        Fix("force_rotate", "Force log rotation",
            "logrotate -f /etc/logrotate.d/{{ inputs.service }}", "logs"),
    ),
)

CPU = Family(
    slug="high-cpu", title="CPU saturated", alert="HostHighCpuLoad",
    summary="CPU usage on a host has stayed above the threshold for 15 minutes.",
    services=("api-gateway", "billing-worker", "search-indexer", "php-fpm", "java-app"),
    threshold=(75, 95, "Busy CPU in percent that counts as saturated"),
    probes=(
        Probe("cpu_busy", "Sample CPU usage",
              "top -bn<secs> -d1 | awk '/^%Cpu/ {v=int(100 - $8)} END {print v}'", "busy", PCT,
              "outputs.busy | int >= inputs.threshold", "stdout | trim | int < inputs.threshold"),
        Probe("load", "Load average per core",
              "awk -v n=$(nproc) '{print int($1 / n * 100)}' /proc/loadavg", "load", PCT,
              "outputs.load | int >= inputs.threshold", "stdout | trim | int < inputs.threshold"),
    ),
    looks=(
        Look("top_procs", "Top processes by CPU",
             "ps -eo pid,ppid,user,%cpu,%mem,etime,cmd --sort=-%cpu | head -<n>"),
        Look("pidstat", "Per-process CPU over 5 s", "pidstat -u 1 <secs> | tail -n <n>"),
        Look("vmstat", "Run queue and steal time", "vmstat 1 <secs>"),
        Look("svc_errors", "Recent warnings of the service",
             "journalctl -u {{ inputs.service }} --since '-<mins>m' -p warning --no-pager | tail -<n>"),
        Look("cgroup_cpu", "Throttling of the service cgroup",
             "cat /sys/fs/cgroup/system.slice/{{ inputs.service }}.service/cpu.stat"),
    ),
    fixes=(
        Fix("restart_service", "Restart the service", "systemctl restart {{ inputs.service }}",
            "runaway"),
        Fix("cap_cpu", "Cap the service at two cores",
            "systemctl set-property --runtime {{ inputs.service }}.service CPUQuota=<pct>0%", "noisy",
            undo="systemctl set-property --runtime {{ inputs.service }}.service CPUQuota="),
        Fix("kill_runaway", "Stop runaway workers",
            "pkill -TERM -f {{ inputs.service }}-worker", "runaway", destructive=True),
        Fix("renice_batch", "Lower the priority of batch jobs",
            "pgrep -f <svc>-batch | xargs -r renice -n <nice> -p", "noisy",
            undo="pgrep -f <svc>-batch | xargs -r renice -n 0 -p"),
    ),
)

DOWN = Family(
    slug="service-down", title="Service not running", alert="SystemdUnitFailed",
    summary="A systemd service is not active and its health check fails.",
    services=("nginx", "haproxy", "redis-server", "consul", "node-exporter", "sshd", "memcached"),
    threshold=(1, 5, "Failed health checks in a row before acting"),
    inputs={"port": {"type": "integer", "default": 8080, "minimum": 1, "maximum": 65535}},
    probes=(
        Probe("unit_state", "State of the unit", "systemctl is-active {{ inputs.service }}", "state",
              "stdout | trim", "outputs.state != 'active'", "stdout | trim == 'active'", (0, 3)),
        Probe("port_open", "Is the port listening",
              "ss -ltn 'sport = :{{ inputs.port }}' | tail -n +2 | wc -l", "listeners", PCT,
              "outputs.listeners | int == 0", "stdout | trim | int > 0"),
    ),
    looks=(
        Look("unit_status", "Unit status", "systemctl status {{ inputs.service }} --no-pager -l | head -<n>",
             (0, 3)),
        Look("unit_log", "Last log lines", "journalctl -u {{ inputs.service }} -n <n>00 --no-pager"),
        Look("oom_kills", "Killed by the OOM killer?",
             "dmesg -T | grep -iE 'oom|killed process' | tail -<n>", (0, 1)),
        Look("config_test", "Configuration test", "{{ inputs.service }} -t 2>&1 | tail -<n>", (0, 1)),
        Look("recent_deploys", "Recent package changes",
             "grep -h ' upgrade \\| install ' /var/log/dpkg.log | tail -<n>", (0, 1)),
    ),
    fixes=(
        Fix("restart_unit", "Restart the unit", "systemctl restart {{ inputs.service }}", "crashed"),
        Fix("reset_failed", "Clear the failed state and start",
            "systemctl reset-failed {{ inputs.service }} && systemctl start {{ inputs.service }}",
            "crashed"),
        Fix("previous_release", "Switch back to the previous release",
            "ln -sfn /srv/{{ inputs.service }}/releases/previous /srv/{{ inputs.service }}/current"
            " && systemctl restart {{ inputs.service }}", "bad_deploy",
            undo="ln -sfn /srv/{{ inputs.service }}/releases/latest /srv/{{ inputs.service }}/current"
                 " && systemctl restart {{ inputs.service }}", destructive=True),
        Fix("restore_config", "Restore the last good configuration",
            "cp -a /etc/{{ inputs.service }}.bak/. /etc/{{ inputs.service }}/"
            " && systemctl reload-or-restart {{ inputs.service }}", "bad_config",
            undo="cp -a /etc/{{ inputs.service }}.new/. /etc/{{ inputs.service }}/"),
    ),
)

PG_LAG = Family(
    slug="pg-replication-lag", title="PostgreSQL replica lagging", alert="PostgresReplicationLag",
    summary="A streaming replica is behind its primary by more than the threshold.",
    services=("postgresql", "patroni"),
    threshold=(30, 600, "Replay lag in seconds that counts as lagging"),
    inputs={"primary": {"type": "string", "default": "db-primary.internal", "description": "Primary host"},
            "max_query_age": {"type": "string", "default": "15 minutes"}},
    probes=(
        Probe("lag", "Replay lag in seconds",
              "psql -XAt -c \"select coalesce(extract(epoch from now() - "
              "pg_last_xact_replay_timestamp()), 0)::int\"", "seconds", PCT,
              "outputs.seconds | int > inputs.threshold", "stdout | trim | int <= inputs.threshold"),
        Probe("replay_paused", "Is replay paused", "psql -XAt -c 'select pg_is_wal_replay_paused()'",
              "paused", "stdout | trim", "outputs.paused == 't'", "stdout | trim == 'f'"),
    ),
    looks=(
        Look("senders", "WAL senders on the primary",
             "psql -h {{ inputs.primary }} -XAt -c \"select client_addr, state, sent_lsn, replay_lsn "
             "from pg_stat_replication\""),
        Look("long_queries", "Longest running queries on the replica",
             "psql -XAt -c \"select pid, now() - xact_start, left(query, 80) from pg_stat_activity "
             "where state <> 'idle' order by 2 desc nulls last limit <n>\""),
        Look("io_wait", "Disk latency", "iostat -xz 1 <secs>"),
        Look("wal_size", "Size of pg_wal", "du -sh /var/lib/postgresql/*/main/pg_wal"),
        Look("conflicts", "Recovery conflicts",
             "psql -XAt -c 'select datname, confl_snapshot, confl_lock from pg_stat_database_conflicts'"),
    ),
    fixes=(
        Fix("resume_replay", "Resume WAL replay", "psql -XAt -c 'select pg_wal_replay_resume()'",
            "paused", undo="psql -XAt -c 'select pg_wal_replay_pause()'"),
        Fix("cancel_queries", "Terminate queries blocking replay",
            "psql -XAt -c \"select pg_terminate_backend(pid) from pg_stat_activity where "
            "backend_type = 'client backend' and now() - xact_start > interval "
            "'{{ inputs.max_query_age | raw }}'\"", "long_queries", destructive=True),
        Fix("restart_replica", "Restart the replica", "systemctl restart {{ inputs.service }}",
            "stuck"),
    ),
)

CRASHLOOP = Family(
    slug="pod-crashloop", title="Pods crash looping", alert="KubePodCrashLooping",
    summary="Pods of a deployment restart repeatedly and the rollout is not available.",
    services=("checkout", "payments", "catalog", "auth", "notifications", "recommendations"),
    threshold=(3, 10, "Restarts in 15 minutes that count as crash looping"),
    local=True,
    inputs={"namespace": {"type": "string", "default": "production"},
            "context": {"type": "string", "default": "prod-eu-1", "description": "kubectl context"},
            "replicas": {"type": "integer", "default": 6, "minimum": 1}},
    probes=(
        Probe("restarts", "Highest restart count",
              "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} get pods "
              "-l app={{ inputs.service }} -o jsonpath='{range .items[*]}"
              "{.status.containerStatuses[0].restartCount}{\"\\n\"}{end}' | sort -n | tail -1",
              "count", PCT, "outputs.count | int >= inputs.threshold",
              "stdout | trim | int < inputs.threshold"),
        Probe("not_ready", "Pods not ready",
              "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} get pods "
              "-l app={{ inputs.service }} --no-headers | grep -vc ' Running '", "pending", PCT,
              "outputs.pending | int > 0", "stdout | trim | int == 0", (0, 1)),
    ),
    looks=(
        Look("describe", "Describe the failing pods",
             "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} describe pods "
             "-l app={{ inputs.service }} | tail -<n>"),
        Look("previous_logs", "Logs of the crashed containers",
             "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} logs "
             "deploy/{{ inputs.service }} --previous --tail=<n>0"),
        Look("events", "Recent events",
             "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} get events "
             "--sort-by=.lastTimestamp | tail -<n>"),
        Look("history", "Rollout history",
             "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} rollout history "
             "deploy/{{ inputs.service }}"),
        Look("node_pressure", "Node conditions",
             "kubectl --context {{ inputs.context }} describe nodes | grep -E 'Pressure|Ready' | sort "
             "| uniq -c"),
    ),
    fixes=(
        Fix("rollout_undo", "Roll back to the previous revision",
            "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} rollout undo "
            "deploy/{{ inputs.service }}", "bad_deploy",
            undo="kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} rollout undo "
                 "deploy/{{ inputs.service }}", destructive=True),
        Fix("raise_memory", "Raise the memory limit",
            "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} set resources "
            "deploy/{{ inputs.service }} --limits=memory=<n>00Mi", "oom",
            undo="kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} rollout undo "
                 "deploy/{{ inputs.service }}"),
        Fix("scale_out", "Scale out", "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} "
            "scale deploy/{{ inputs.service }} --replicas={{ inputs.replicas }}", "load"),
        Fix("restart_rollout", "Restart the rollout",
            "kubectl --context {{ inputs.context }} -n {{ inputs.namespace }} rollout restart "
            "deploy/{{ inputs.service }}", "dependency"),
    ),
)

CERT = Family(
    slug="cert-expiry", title="TLS certificate about to expire", alert="CertificateExpiringSoon",
    summary="A TLS certificate served by the host expires within the threshold.",
    services=("nginx", "haproxy", "traefik", "apache2"),
    threshold=(7, 30, "Days before expiry that count as too close"),
    inputs={"domain": {"type": "string", "default": "www.example.com", "description": "Certificate name"}},
    probes=(
        Probe("days_left", "Days until the certificate expires",
              "certbot certificates --cert-name {{ inputs.domain }} 2>/dev/null "
              "| grep -oP 'VALID: \\K[0-9]+'", "days", PCT,
              "outputs.days | int <= inputs.threshold", "stdout | trim | int > inputs.threshold"),
        Probe("served_expiry", "Expiry of the certificate actually served",
              "echo | openssl s_client -connect {{ inputs.host }}:443 -servername {{ inputs.domain }} "
              "2>/dev/null | openssl x509 -noout -checkend 604800 && echo ok || echo expiring", "state",
              "stdout | trim", "outputs.state == 'expiring'", "stdout | trim == 'ok'"),
    ),
    looks=(
        Look("renew_timer", "Renewal timer", "systemctl list-timers certbot.timer --no-pager"),
        Look("renew_log", "Last renewal attempts", "tail -n <n>0 /var/log/letsencrypt/letsencrypt.log"),
        Look("dns_check", "DNS of the domain", "dig +short {{ inputs.domain }} A"),
        Look("acme_port", "Port 80 reachable for the challenge",
             "curl -sS -o /dev/null -w '%{http_code}' http://{{ inputs.domain }}/.well-known/acme-challenge/"
             "probe", (0, 7, 28)),
    ),
    fixes=(
        Fix("renew", "Renew the certificate",
            "certbot renew --cert-name {{ inputs.domain }} --no-random-sleep-on-renew", "renewal_failed"),
        Fix("reload_proxy", "Reload the proxy to serve the new certificate",
            "{{ inputs.service }} -t && systemctl reload {{ inputs.service }}", "not_reloaded"),
        Fix("force_renew", "Force a new certificate",
            "certbot certonly --force-renewal --cert-name {{ inputs.domain }} -d {{ inputs.domain }}",
            "renewal_failed", destructive=True),
    ),
)

MEMORY = Family(
    slug="memory-pressure", title="Host running out of memory", alert="HostOutOfMemory",
    summary="Available memory is below the threshold and the OOM killer may strike.",
    services=("java-app", "elasticsearch", "clickhouse-server", "mysql", "celery"),
    threshold=(85, 97, "Used memory in percent that counts as pressure"),
    probes=(
        Probe("mem_used", "Used memory in percent",
              "free -m | awk '/^Mem:/ {print int(($2 - $7) / $2 * 100)}'", "pct", PCT,
              "outputs.pct | int >= inputs.threshold", "stdout | trim | int < inputs.threshold"),
        Probe("oom_events", "OOM kills in the last hour",
              "journalctl -k --since '-<mins>m' --no-pager | grep -c 'Out of memory'", "kills", PCT,
              "outputs.kills | int > 0", "stdout | trim | int == 0", (0, 1)),
    ),
    looks=(
        Look("top_rss", "Processes by resident memory",
             "ps -eo pid,user,rss,vsz,cmd --sort=-rss | head -<n>"),
        Look("slab", "Kernel slab usage", "slabtop -o -s c | head -<n>"),
        Look("swap", "Swap activity", "vmstat -S M 1 <secs>"),
        Look("smaps", "Memory of the service",
             "systemctl show {{ inputs.service }} -p MemoryCurrent -p MemoryMax"),
    ),
    fixes=(
        Fix("restart_service", "Restart the leaking service", "systemctl restart {{ inputs.service }}",
            "leak"),
        Fix("cap_memory", "Limit the memory of the service",
            "systemctl set-property --runtime {{ inputs.service }}.service MemoryHigh=<pct>%", "growth",
            undo="systemctl set-property --runtime {{ inputs.service }}.service MemoryHigh=infinity"),
        Fix("drop_caches", "Drop clean page caches", "sync && echo 1 > /proc/sys/vm/drop_caches",
            "cache"),
    ),
)

QUEUE = Family(
    slug="queue-backlog", title="Message queue backlog growing", alert="RabbitmqQueueBacklog",
    summary="Messages pile up in a queue faster than the consumers take them.",
    services=("orders-consumer", "email-sender", "webhook-dispatcher", "invoice-worker"),
    threshold=(5000, 100000, "Ready messages that count as a backlog"),
    group="consumers",
    inputs={"queue": {"type": "string", "default": "orders", "description": "Queue name"},
            "vhost": {"type": "string", "default": "/"}},
    probes=(
        Probe("depth", "Ready messages in the queue",
              "rabbitmqctl -q -p {{ inputs.vhost }} list_queues name messages_ready "
              "| grep -w {{ inputs.queue }} | awk '{print $2}'", "ready", PCT,
              "outputs.ready | int >= inputs.threshold", "stdout | trim | int < inputs.threshold"),
        Probe("consumers", "Consumers attached",
              "rabbitmqctl -q -p {{ inputs.vhost }} list_queues name consumers "
              "| grep -w {{ inputs.queue }} | awk '{print $2}'", "attached", PCT,
              "outputs.attached | int < 2", "stdout | trim | int >= 2"),
    ),
    looks=(
        Look("rates", "Publish and deliver rates",
             "rabbitmqctl -q -p {{ inputs.vhost }} list_queues name messages_ready "
             "messages_unacknowledged consumers"),
        Look("consumer_log", "Consumer errors",
             "journalctl -u {{ inputs.service }}@* --since '-<mins>m' -p err --no-pager | tail -<n>"),
        Look("alarms", "Broker alarms", "rabbitmq-diagnostics alarms"),
        Look("connections", "Blocked connections",
             "rabbitmqctl -q list_connections name state | grep -c blocked", (0, 1)),
    ),
    fixes=(
        Fix("scale_consumers", "Start extra consumers",
            "systemctl start {{ inputs.service }}@{{ item }}", "slow_consumers",
            undo="systemctl stop {{ inputs.service }}@{{ item }}", loop=("3", "4", "5", "6")),
        Fix("restart_consumers", "Restart the consumers",
            "systemctl restart '{{ inputs.service | raw }}@*'", "stuck_consumers"),
        Fix("purge_dead", "Purge the dead-letter queue",
            "rabbitmqctl -p {{ inputs.vhost }} purge_queue {{ inputs.queue }}.dlq", "poison",
            destructive=True),
    ),
)

FAMILIES: tuple[Family, ...] = (DISK, CPU, DOWN, PG_LAG, CRASHLOOP, CERT, MEMORY, QUEUE)

TEAMS = ("platform-team", "sre", "dba-team", "payments-sre", "core-infra", "search-team")
CHANNELS = ("oncall", "incidents", "ops-alerts", "team-platform", "sre-pager")
HOST_PREFIXES = ("db", "web", "api", "cache", "worker", "lb", "es", "mq")
