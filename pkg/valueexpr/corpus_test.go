package valueexpr

// The expressions below are facts: each was copied programmatically (by
// loading the YAML, never retyped) from the rule file named by its source, at
// the commit given there, and checked to be byte-identical to that file's
// expression for the alert (the first one of that name in the file, where
// severity variants share it). The kube-prometheus manifests are its
// rendering of the node, kubernetes, kube-state-metrics, prometheus,
// alertmanager, prometheus-operator and grafana mixins.
//
// want is the value expression as written in the rule, a slice of expr; it
// is compared after both are re-printed by the parser.

// Rule files the corpus was copied from, as owner/repo:path@commit.
const (
	nodeExporterRules           = "prometheus-operator/kube-prometheus:manifests/nodeExporter-prometheusRule.yaml@4d719f1dea8853540b3823ab1fbe6be74a9953b3"
	kubernetesControlPlaneRules = "prometheus-operator/kube-prometheus:manifests/kubernetesControlPlane-prometheusRule.yaml@4d719f1dea8853540b3823ab1fbe6be74a9953b3"
	kubeStateMetricsRules       = "prometheus-operator/kube-prometheus:manifests/kubeStateMetrics-prometheusRule.yaml@4d719f1dea8853540b3823ab1fbe6be74a9953b3"
	prometheusRules             = "prometheus-operator/kube-prometheus:manifests/prometheus-prometheusRule.yaml@4d719f1dea8853540b3823ab1fbe6be74a9953b3"
	alertmanagerRules           = "prometheus-operator/kube-prometheus:manifests/alertmanager-prometheusRule.yaml@4d719f1dea8853540b3823ab1fbe6be74a9953b3"
	kubePrometheusRules         = "prometheus-operator/kube-prometheus:manifests/kubePrometheus-prometheusRule.yaml@4d719f1dea8853540b3823ab1fbe6be74a9953b3"
	prometheusOperatorRules     = "prometheus-operator/kube-prometheus:manifests/prometheusOperator-prometheusRule.yaml@4d719f1dea8853540b3823ab1fbe6be74a9953b3"
	grafanaRules                = "prometheus-operator/kube-prometheus:manifests/grafana-prometheusRule.yaml@4d719f1dea8853540b3823ab1fbe6be74a9953b3"
	thanosRules                 = "thanos-io/thanos:examples/alerts/alerts.yaml@e103a81bd5943697394afcb4fb592b6ffa806c30"
	awesomeRules                = "samber/awesome-prometheus-alerts:_data/rules.yml@a8533189af0246de5e21a6d8d25bd37816894f07"
)

// corpusRule is an alerting rule of a public mixin.
type corpusRule struct {
	source string // The rule file, as owner/repo:path@commit.
	alert  string // The alert's name; for awesomeRules the rule's name: field.
	expr   string
	// want is the value expression, or "" for a rule that is kept whole.
	want string
	// absent marks a rule whose value is absent()'s, which is not polled.
	absent bool
}

var corpus = []corpusRule{
	{
		source: nodeExporterRules,
		alert:  "NodeFilesystemSpaceFillingUp",
		expr: `(
  node_filesystem_avail_bytes{job="node-exporter",fstype!="",mountpoint!=""} / node_filesystem_size_bytes{job="node-exporter",fstype!="",mountpoint!=""} * 100 < 15
and
  predict_linear(node_filesystem_avail_bytes{job="node-exporter",fstype!="",mountpoint!=""}[6h], 24*60*60) < 0
and
  node_filesystem_readonly{job="node-exporter",fstype!="",mountpoint!=""} == 0
)`,
		want: `node_filesystem_avail_bytes{job="node-exporter",fstype!="",mountpoint!=""} / node_filesystem_size_bytes{job="node-exporter",fstype!="",mountpoint!=""} * 100`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeFilesystemAlmostOutOfSpace",
		expr: `(
  node_filesystem_avail_bytes{job="node-exporter",fstype!="",mountpoint!=""} / node_filesystem_size_bytes{job="node-exporter",fstype!="",mountpoint!=""} * 100 < 5
and
  node_filesystem_readonly{job="node-exporter",fstype!="",mountpoint!=""} == 0
)`,
		want: `node_filesystem_avail_bytes{job="node-exporter",fstype!="",mountpoint!=""} / node_filesystem_size_bytes{job="node-exporter",fstype!="",mountpoint!=""} * 100`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeFilesystemFilesFillingUp",
		expr: `(
  node_filesystem_files_free{job="node-exporter",fstype!="",mountpoint!=""} / node_filesystem_files{job="node-exporter",fstype!="",mountpoint!=""} * 100 < 40
and
  predict_linear(node_filesystem_files_free{job="node-exporter",fstype!="",mountpoint!=""}[6h], 24*60*60) < 0
and
  node_filesystem_readonly{job="node-exporter",fstype!="",mountpoint!=""} == 0
)`,
		want: `node_filesystem_files_free{job="node-exporter",fstype!="",mountpoint!=""} / node_filesystem_files{job="node-exporter",fstype!="",mountpoint!=""} * 100`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeFilesystemAlmostOutOfFiles",
		expr: `(
  node_filesystem_files_free{job="node-exporter",fstype!="",mountpoint!=""} / node_filesystem_files{job="node-exporter",fstype!="",mountpoint!=""} * 100 < 5
and
  node_filesystem_readonly{job="node-exporter",fstype!="",mountpoint!=""} == 0
)`,
		want: `node_filesystem_files_free{job="node-exporter",fstype!="",mountpoint!=""} / node_filesystem_files{job="node-exporter",fstype!="",mountpoint!=""} * 100`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeNetworkReceiveErrs",
		expr:   `rate(node_network_receive_errs_total{job="node-exporter"}[2m]) / rate(node_network_receive_packets_total{job="node-exporter"}[2m]) > 0.01`,
		want:   `rate(node_network_receive_errs_total{job="node-exporter"}[2m]) / rate(node_network_receive_packets_total{job="node-exporter"}[2m])`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeNetworkTransmitErrs",
		expr:   `rate(node_network_transmit_errs_total{job="node-exporter"}[2m]) / rate(node_network_transmit_packets_total{job="node-exporter"}[2m]) > 0.01`,
		want:   `rate(node_network_transmit_errs_total{job="node-exporter"}[2m]) / rate(node_network_transmit_packets_total{job="node-exporter"}[2m])`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeHighNumberConntrackEntriesUsed",
		expr:   `(node_nf_conntrack_entries{job="node-exporter"} / node_nf_conntrack_entries_limit) > 0.75`,
		want:   `node_nf_conntrack_entries{job="node-exporter"} / node_nf_conntrack_entries_limit`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeTextFileCollectorScrapeError",
		expr:   `node_textfile_scrape_error{job="node-exporter"} == 1`,
		want:   `node_textfile_scrape_error{job="node-exporter"}`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeClockSkewDetected",
		expr: `(
  node_timex_offset_seconds{job="node-exporter"} > 0.05
and
  deriv(node_timex_offset_seconds{job="node-exporter"}[5m]) >= 0
)
or
(
  node_timex_offset_seconds{job="node-exporter"} < -0.05
and
  deriv(node_timex_offset_seconds{job="node-exporter"}[5m]) <= 0
)`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeClockNotSynchronising",
		expr: `min_over_time(node_timex_sync_status{job="node-exporter"}[5m]) == 0
and
node_timex_maxerror_seconds{job="node-exporter"} >= 16`,
		want: `min_over_time(node_timex_sync_status{job="node-exporter"}[5m])`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeRAIDDegraded",
		expr:   `node_md_disks_required{job="node-exporter",device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"} - ignoring (state) (node_md_disks{state="active",job="node-exporter",device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"}) > 0`,
		want:   `node_md_disks_required{job="node-exporter",device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"} - ignoring (state) (node_md_disks{state="active",job="node-exporter",device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"})`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeRAIDDiskFailure",
		expr:   `node_md_disks{state="failed",job="node-exporter",device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"} > 0`,
		want:   `node_md_disks{state="failed",job="node-exporter",device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"}`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeFileDescriptorLimit",
		expr: `(
  node_filefd_allocated{job="node-exporter"} * 100 / node_filefd_maximum{job="node-exporter"} > 70
)`,
		want: `node_filefd_allocated{job="node-exporter"} * 100 / node_filefd_maximum{job="node-exporter"}`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeCPUHighUsage",
		expr:   `sum without(mode) (avg without (cpu) (rate(node_cpu_seconds_total{job="node-exporter", mode!~"idle|iowait"}[2m]))) * 100 > 90`,
		want:   `sum without(mode) (avg without (cpu) (rate(node_cpu_seconds_total{job="node-exporter", mode!~"idle|iowait"}[2m]))) * 100`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeSystemSaturation",
		expr: `node_load1{job="node-exporter"}
/ count without (cpu, mode) (node_cpu_seconds_total{job="node-exporter", mode="idle"}) > 2`,
		want: `node_load1{job="node-exporter"}
/ count without (cpu, mode) (node_cpu_seconds_total{job="node-exporter", mode="idle"})`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeMemoryMajorPagesFaults",
		expr:   `rate(node_vmstat_pgmajfault{job="node-exporter"}[5m]) > 500`,
		want:   `rate(node_vmstat_pgmajfault{job="node-exporter"}[5m])`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeMemoryHighUtilization",
		expr:   `100 - (node_memory_MemAvailable_bytes{job="node-exporter"} / node_memory_MemTotal_bytes{job="node-exporter"} * 100) > 90`,
		want:   `100 - (node_memory_MemAvailable_bytes{job="node-exporter"} / node_memory_MemTotal_bytes{job="node-exporter"} * 100)`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeDiskIOSaturation",
		expr:   `rate(node_disk_io_time_weighted_seconds_total{job="node-exporter", device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"}[5m]) > 10`,
		want:   `rate(node_disk_io_time_weighted_seconds_total{job="node-exporter", device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"}[5m])`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeSystemdServiceFailed",
		expr:   `node_systemd_unit_state{job="node-exporter", state="failed"} == 1`,
		want:   `node_systemd_unit_state{job="node-exporter", state="failed"}`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeSystemdServiceCrashlooping",
		expr:   `increase(node_systemd_service_restart_total{job="node-exporter"}[5m]) > 2`,
		want:   `increase(node_systemd_service_restart_total{job="node-exporter"}[5m])`,
	},
	{
		source: nodeExporterRules,
		alert:  "NodeBondingDegraded",
		expr:   `(node_bonding_slaves{job="node-exporter"} - node_bonding_active{job="node-exporter"}) != 0`,
		want:   `node_bonding_slaves{job="node-exporter"} - node_bonding_active{job="node-exporter"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubePodCrashLooping",
		expr:   `max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff", job="kube-state-metrics"}[5m]) >= 1`,
		want:   `max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff", job="kube-state-metrics"}[5m])`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubePodNotReady",
		expr: `sum by (namespace, pod, job, cluster) (
  max by(namespace, pod, job, cluster) (
    kube_pod_status_phase{job="kube-state-metrics", phase=~"Pending|Unknown"}
    or
    (
      kube_pod_status_phase{job="kube-state-metrics", phase="Running"} == 1
      and on(namespace, pod, cluster)
      kube_pod_status_ready{job="kube-state-metrics", condition="true"} == 0
    )
  ) * on(namespace, pod, cluster) group_left() topk by(namespace, pod, cluster) (
    1, max by(namespace, pod, owner_kind, cluster) (kube_pod_owner{owner_kind!="Job"})
  )
) > 0
unless on(namespace, pod, cluster)
kube_pod_status_reason{job="kube-state-metrics", reason="SchedulingGated"} == 1`,
		want: `sum by (namespace, pod, job, cluster) (
  max by(namespace, pod, job, cluster) (
    kube_pod_status_phase{job="kube-state-metrics", phase=~"Pending|Unknown"}
    or
    (
      kube_pod_status_phase{job="kube-state-metrics", phase="Running"} == 1
      and on(namespace, pod, cluster)
      kube_pod_status_ready{job="kube-state-metrics", condition="true"} == 0
    )
  ) * on(namespace, pod, cluster) group_left() topk by(namespace, pod, cluster) (
    1, max by(namespace, pod, owner_kind, cluster) (kube_pod_owner{owner_kind!="Job"})
  )
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeDeploymentGenerationMismatch",
		expr: `kube_deployment_status_observed_generation{job="kube-state-metrics"}
  !=
kube_deployment_metadata_generation{job="kube-state-metrics"}`,
		want: `kube_deployment_status_observed_generation{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeDeploymentReplicasMismatch",
		expr: `(
  kube_deployment_spec_replicas{job="kube-state-metrics"}
    >
  kube_deployment_status_replicas_available{job="kube-state-metrics"}
) and (
  changes(kube_deployment_status_replicas_updated{job="kube-state-metrics"}[10m])
    ==
  0
)`,
		want: `kube_deployment_spec_replicas{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeDeploymentRolloutStuck",
		expr: `kube_deployment_status_condition{condition="Progressing", status="false",job="kube-state-metrics"}
!= 0`,
		want: `kube_deployment_status_condition{condition="Progressing", status="false",job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeStatefulSetReplicasMismatch",
		expr: `(
  kube_statefulset_status_replicas_ready{job="kube-state-metrics"}
    !=
  kube_statefulset_replicas{job="kube-state-metrics"}
) and (
  changes(kube_statefulset_status_replicas_updated{job="kube-state-metrics"}[10m])
    ==
  0
)`,
		want: `kube_statefulset_status_replicas_ready{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeStatefulSetGenerationMismatch",
		expr: `kube_statefulset_status_observed_generation{job="kube-state-metrics"}
  !=
kube_statefulset_metadata_generation{job="kube-state-metrics"}`,
		want: `kube_statefulset_status_observed_generation{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeStatefulSetUpdateNotRolledOut",
		expr: `(
  max by(namespace, statefulset, job, cluster) (
    kube_statefulset_status_current_revision{job="kube-state-metrics"}
      unless
    kube_statefulset_status_update_revision{job="kube-state-metrics"}
  )
    * on(namespace, statefulset, job, cluster)
  (
    kube_statefulset_replicas{job="kube-state-metrics"}
      !=
    kube_statefulset_status_replicas_updated{job="kube-state-metrics"}
  )
)  and on(namespace, statefulset, job, cluster) (
  changes(kube_statefulset_status_replicas_updated{job="kube-state-metrics"}[5m])
    ==
  0
)`,
		want: `max by(namespace, statefulset, job, cluster) (
    kube_statefulset_status_current_revision{job="kube-state-metrics"}
      unless
    kube_statefulset_status_update_revision{job="kube-state-metrics"}
  )
    * on(namespace, statefulset, job, cluster)
  (
    kube_statefulset_replicas{job="kube-state-metrics"}
      !=
    kube_statefulset_status_replicas_updated{job="kube-state-metrics"}
  )`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeDaemonSetRolloutStuck",
		expr: `(
  (
    kube_daemonset_status_current_number_scheduled{job="kube-state-metrics"}
      !=
    kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
  ) or (
    kube_daemonset_status_number_misscheduled{job="kube-state-metrics"}
      !=
    0
  ) or (
    kube_daemonset_status_updated_number_scheduled{job="kube-state-metrics"}
      !=
    kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
  ) or (
    kube_daemonset_status_number_available{job="kube-state-metrics"}
      !=
    kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
  )
) and (
  changes(kube_daemonset_status_updated_number_scheduled{job="kube-state-metrics"}[5m])
    ==
  0
)`,
		want: `(
    kube_daemonset_status_current_number_scheduled{job="kube-state-metrics"}
      !=
    kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
  ) or (
    kube_daemonset_status_number_misscheduled{job="kube-state-metrics"}
      !=
    0
  ) or (
    kube_daemonset_status_updated_number_scheduled{job="kube-state-metrics"}
      !=
    kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
  ) or (
    kube_daemonset_status_number_available{job="kube-state-metrics"}
      !=
    kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
  )`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeContainerWaiting",
		expr:   `kube_pod_container_status_waiting_reason{reason!="CrashLoopBackOff", job="kube-state-metrics"} > 0`,
		want:   `kube_pod_container_status_waiting_reason{reason!="CrashLoopBackOff", job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeDaemonSetNotScheduled",
		expr: `kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
  -
kube_daemonset_status_current_number_scheduled{job="kube-state-metrics"} > 0`,
		want: `kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
  -
kube_daemonset_status_current_number_scheduled{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeDaemonSetMisScheduled",
		expr:   `kube_daemonset_status_number_misscheduled{job="kube-state-metrics"} > 0`,
		want:   `kube_daemonset_status_number_misscheduled{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeJobNotCompleted",
		expr: `time() - max by(namespace, job_name, cluster) (kube_job_status_start_time{job="kube-state-metrics"}
  and
kube_job_status_active{job="kube-state-metrics"} > 0) > 43200`,
		want: `time() - max by(namespace, job_name, cluster) (kube_job_status_start_time{job="kube-state-metrics"}
  and
kube_job_status_active{job="kube-state-metrics"} > 0)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeJobFailed",
		expr:   `kube_job_failed{job="kube-state-metrics"}  > 0`,
		want:   `kube_job_failed{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeHpaReplicasMismatch",
		expr: `(kube_horizontalpodautoscaler_status_desired_replicas{job="kube-state-metrics"}
  !=
kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"})
  and
(kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"}
  >
kube_horizontalpodautoscaler_spec_min_replicas{job="kube-state-metrics"})
  and
(kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"}
  <
kube_horizontalpodautoscaler_spec_max_replicas{job="kube-state-metrics"})
  and
changes(kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"}[15m]) == 0`,
		want: `kube_horizontalpodautoscaler_status_desired_replicas{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeHpaMaxedOut",
		expr: `(
  kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"}
    ==
  kube_horizontalpodautoscaler_spec_max_replicas{job="kube-state-metrics"}
)
and on(namespace, horizontalpodautoscaler, cluster) (
  kube_horizontalpodautoscaler_spec_max_replicas{job="kube-state-metrics"}
    !=
  kube_horizontalpodautoscaler_spec_min_replicas{job="kube-state-metrics"}
)`,
		want: `kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubePdbNotEnoughHealthyPods",
		expr: `(
  kube_poddisruptionbudget_status_desired_healthy{job="kube-state-metrics"}
  -
  kube_poddisruptionbudget_status_current_healthy{job="kube-state-metrics"}
)
> 0`,
		want: `kube_poddisruptionbudget_status_desired_healthy{job="kube-state-metrics"}
  -
  kube_poddisruptionbudget_status_current_healthy{job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeCPUOvercommit",
		expr: `# Non-HA clusters.
(
  (
    sum by(cluster) (namespace_cpu:kube_pod_container_resource_requests:sum{})
    -
    sum by(cluster) (kube_node_status_allocatable{job="kube-state-metrics",resource="cpu"}) > 0
  )
  and
  count by (cluster) (max by (cluster, node) (kube_node_role{job="kube-state-metrics", role="control-plane"})) < 3
)
or
# HA clusters.
(
  sum by(cluster) (namespace_cpu:kube_pod_container_resource_requests:sum{})
  -
  (
    # Skip clusters with only one allocatable node.
    (
      sum by (cluster) (kube_node_status_allocatable{job="kube-state-metrics",resource="cpu"})
      -
      max by (cluster) (kube_node_status_allocatable{job="kube-state-metrics",resource="cpu"})
    ) > 0
  ) > 0
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeMemoryOvercommit",
		expr: `# Non-HA clusters.
(
  (
    sum by(cluster) (namespace_memory:kube_pod_container_resource_requests:sum{})
    -
    sum by(cluster) (kube_node_status_allocatable{job="kube-state-metrics",resource="memory"}) > 0
  )
  and
  count by (cluster) (max by (cluster, node) (kube_node_role{job="kube-state-metrics", role="control-plane"})) < 3
)
or
# HA clusters.
(
  sum by(cluster) (namespace_memory:kube_pod_container_resource_requests:sum{})
  -
  (
    # Skip clusters with only one allocatable node.
    (
      sum by (cluster) (kube_node_status_allocatable{job="kube-state-metrics",resource="memory"})
      -
      max by (cluster) (kube_node_status_allocatable{job="kube-state-metrics",resource="memory"})
    ) > 0
  ) > 0
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeCPUQuotaOvercommit",
		expr: `sum by(cluster) (
  min without(resource) (kube_resourcequota{job="kube-state-metrics", type="hard", resource=~"(cpu|requests.cpu)"})
)
/
sum by(cluster) (
  kube_node_status_allocatable{resource="cpu", job="kube-state-metrics"}
) > 1.5`,
		want: `sum by(cluster) (
  min without(resource) (kube_resourcequota{job="kube-state-metrics", type="hard", resource=~"(cpu|requests.cpu)"})
)
/
sum by(cluster) (
  kube_node_status_allocatable{resource="cpu", job="kube-state-metrics"}
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeMemoryQuotaOvercommit",
		expr: `sum by(cluster) (
  min without(resource) (kube_resourcequota{job="kube-state-metrics", type="hard", resource=~"(memory|requests.memory)"})
)
/
sum by(cluster) (
  kube_node_status_allocatable{resource="memory", job="kube-state-metrics"}
) > 1.5`,
		want: `sum by(cluster) (
  min without(resource) (kube_resourcequota{job="kube-state-metrics", type="hard", resource=~"(memory|requests.memory)"})
)
/
sum by(cluster) (
  kube_node_status_allocatable{resource="memory", job="kube-state-metrics"}
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeQuotaAlmostFull",
		expr: `topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="used"}
  )
)
/ on (cluster, namespace, resource, resourcequota) group_left()
topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="hard"}
  ) > 0
)
> 0.9 < 1`,
		want: `topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="used"}
  )
)
/ on (cluster, namespace, resource, resourcequota) group_left()
topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="hard"}
  ) > 0
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeQuotaFullyUsed",
		expr: `topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="used"}
  )
)
/ on (cluster, namespace, resource, resourcequota) group_left()
topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="hard"}
  ) > 0
)
== 1`,
		want: `topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="used"}
  )
)
/ on (cluster, namespace, resource, resourcequota) group_left()
topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="hard"}
  ) > 0
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeQuotaExceeded",
		expr: `topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="used"}
  )
)
/ on (cluster, namespace, resource, resourcequota) group_left()
topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="hard"}
  ) > 0
) > 1`,
		want: `topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="used"}
  )
)
/ on (cluster, namespace, resource, resourcequota) group_left()
topk by (cluster, namespace, resource, resourcequota) (1,
  max without (instance, job, type) (
    kube_resourcequota{job="kube-state-metrics", type="hard"}
  ) > 0
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "CPUThrottlingHigh",
		expr: `sum without (id, metrics_path, name, image, endpoint, job, node) (
  topk by (cluster, namespace, pod, container, instance) (1,
    increase(
      container_cpu_cfs_throttled_periods_total{container!="", job="kubelet", metrics_path="/metrics/cadvisor", }
    [5m])
  )
)
/ on (cluster, namespace, pod, container, instance) group_left
sum without (id, metrics_path, name, image, endpoint, job, node) (
  topk by (cluster, namespace, pod, container, instance) (1,
    increase(
      container_cpu_cfs_periods_total{job="kubelet", metrics_path="/metrics/cadvisor", }
    [5m])
  )
)
> ( 25 / 100 )`,
		want: `sum without (id, metrics_path, name, image, endpoint, job, node) (
  topk by (cluster, namespace, pod, container, instance) (1,
    increase(
      container_cpu_cfs_throttled_periods_total{container!="", job="kubelet", metrics_path="/metrics/cadvisor", }
    [5m])
  )
)
/ on (cluster, namespace, pod, container, instance) group_left
sum without (id, metrics_path, name, image, endpoint, job, node) (
  topk by (cluster, namespace, pod, container, instance) (1,
    increase(
      container_cpu_cfs_periods_total{job="kubelet", metrics_path="/metrics/cadvisor", }
    [5m])
  )
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubePersistentVolumeFillingUp",
		expr: `(
  kubelet_volume_stats_available_bytes{job="kubelet", metrics_path="/metrics"}
    /
  kubelet_volume_stats_capacity_bytes{job="kubelet", metrics_path="/metrics"}
) < 0.03
and
kubelet_volume_stats_used_bytes{job="kubelet", metrics_path="/metrics"} > 0
unless on(cluster, namespace, persistentvolumeclaim)
kube_persistentvolumeclaim_access_mode{ access_mode="ReadOnlyMany"} == 1
unless on(cluster, namespace, persistentvolumeclaim)
kube_persistentvolumeclaim_labels{label_excluded_from_alerts="true"} == 1`,
		want: `kubelet_volume_stats_available_bytes{job="kubelet", metrics_path="/metrics"}
    /
  kubelet_volume_stats_capacity_bytes{job="kubelet", metrics_path="/metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubePersistentVolumeInodesFillingUp",
		expr: `(
  kubelet_volume_stats_inodes_free{job="kubelet", metrics_path="/metrics"}
    /
  kubelet_volume_stats_inodes{job="kubelet", metrics_path="/metrics"}
) < 0.03
and
kubelet_volume_stats_inodes_used{job="kubelet", metrics_path="/metrics"} > 0
unless on(cluster, namespace, persistentvolumeclaim)
kube_persistentvolumeclaim_access_mode{ access_mode="ReadOnlyMany"} == 1
unless on(cluster, namespace, persistentvolumeclaim)
kube_persistentvolumeclaim_labels{label_excluded_from_alerts="true"} == 1`,
		want: `kubelet_volume_stats_inodes_free{job="kubelet", metrics_path="/metrics"}
    /
  kubelet_volume_stats_inodes{job="kubelet", metrics_path="/metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubePersistentVolumeErrors",
		expr:   `kube_persistentvolume_status_phase{phase=~"Failed|Pending",job="kube-state-metrics"} > 0`,
		want:   `kube_persistentvolume_status_phase{phase=~"Failed|Pending",job="kube-state-metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeVersionMismatch",
		expr:   `count by (cluster) (count by (git_version, cluster) (label_replace(kubernetes_build_info{job!~"kube-dns|coredns"},"git_version","$1","git_version","(v[0-9]*.[0-9]*).*"))) > 1`,
		want:   `count by (cluster) (count by (git_version, cluster) (label_replace(kubernetes_build_info{job!~"kube-dns|coredns"},"git_version","$1","git_version","(v[0-9]*.[0-9]*).*")))`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeClientErrors",
		expr: `(sum(rate(rest_client_requests_total{job="apiserver",code=~"5.."}[5m])) by (cluster, instance, job, namespace)
  /
sum(rate(rest_client_requests_total{job="apiserver"}[5m])) by (cluster, instance, job, namespace))
> 0.01`,
		want: `sum(rate(rest_client_requests_total{job="apiserver",code=~"5.."}[5m])) by (cluster, instance, job, namespace)
  /
sum(rate(rest_client_requests_total{job="apiserver"}[5m])) by (cluster, instance, job, namespace)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeAPIErrorBudgetBurn",
		expr: `sum by(cluster) (apiserver_request:burnrate1h) > (14.40 * 0.01000)
and on(cluster)
sum by(cluster) (apiserver_request:burnrate5m) > (14.40 * 0.01000)`,
		want: `sum by(cluster) (apiserver_request:burnrate1h)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeClientCertificateExpiration",
		expr: `histogram_quantile(0.01, sum without (namespace, service, endpoint) (rate(apiserver_client_certificate_expiration_seconds_bucket{job="apiserver"}[5m]))) < 604800
and
on(job, cluster, instance) apiserver_client_certificate_expiration_seconds_count{job="apiserver"} > 0`,
		want: `histogram_quantile(0.01, sum without (namespace, service, endpoint) (rate(apiserver_client_certificate_expiration_seconds_bucket{job="apiserver"}[5m])))`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeAggregatedAPIErrors",
		expr:   `sum by(cluster, instance, name, reason)(increase(aggregator_unavailable_apiservice_total{job="apiserver"}[1m])) > 0`,
		want:   `sum by(cluster, instance, name, reason)(increase(aggregator_unavailable_apiservice_total{job="apiserver"}[1m]))`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeAggregatedAPIDown",
		expr:   `(1 - max by(name, namespace, cluster)(avg_over_time(aggregator_unavailable_apiservice{job="apiserver"}[10m]))) * 100 < 85`,
		want:   `(1 - max by(name, namespace, cluster)(avg_over_time(aggregator_unavailable_apiservice{job="apiserver"}[10m]))) * 100`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeAPIDown",
		expr:   `absent(up{job="apiserver"})`,
		absent: true,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeAPIInstanceUnreachable",
		expr:   `up{job="apiserver"} == 0`,
		want:   `up{job="apiserver"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeAPITerminatedRequests",
		expr:   `sum by(cluster) (rate(apiserver_request_terminations_total{job="apiserver"}[10m])) / ( sum by(cluster) (rate(apiserver_request_total{job="apiserver"}[10m])) + sum by(cluster) (rate(apiserver_request_terminations_total{job="apiserver"}[10m])) ) > 0.20`,
		want:   `sum by(cluster) (rate(apiserver_request_terminations_total{job="apiserver"}[10m])) / ( sum by(cluster) (rate(apiserver_request_total{job="apiserver"}[10m])) + sum by(cluster) (rate(apiserver_request_terminations_total{job="apiserver"}[10m])) )`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeNodeNotReady",
		expr: `kube_node_status_condition{job="kube-state-metrics",condition="Ready",status="true"} == 0
and on (cluster, node)
kube_node_spec_unschedulable{job="kube-state-metrics"} == 0`,
		want: `kube_node_status_condition{job="kube-state-metrics",condition="Ready",status="true"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeNodePressure",
		expr: `kube_node_status_condition{job="kube-state-metrics",condition=~"(MemoryPressure|DiskPressure|PIDPressure)",status="true"} == 1
and on (cluster, node)
kube_node_spec_unschedulable{job="kube-state-metrics"} == 0`,
		want: `kube_node_status_condition{job="kube-state-metrics",condition=~"(MemoryPressure|DiskPressure|PIDPressure)",status="true"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeNodeUnreachable",
		expr:   `(kube_node_spec_taint{job="kube-state-metrics",key="node.kubernetes.io/unreachable",effect="NoSchedule"} unless ignoring(key,value) kube_node_spec_taint{job="kube-state-metrics",key=~"ToBeDeletedByClusterAutoscaler|cloud.google.com/impending-node-termination|aws-node-termination-handler/spot-itn"}) == 1`,
		// unless is reduced below a comparison as at the top: the rule
		// is the same as "kube_node_spec_taint{...} == 1 unless ...".
		want: `kube_node_spec_taint{job="kube-state-metrics",key="node.kubernetes.io/unreachable",effect="NoSchedule"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletTooManyPods",
		expr: `(
  max by (cluster, instance) (
    kubelet_running_pods{job="kubelet", metrics_path="/metrics"} > 1
  )
  * on (cluster, instance) group_left(node)
  max by (cluster, instance, node) (
    kubelet_node_name{job="kubelet", metrics_path="/metrics"}
  )
)
/ on (cluster, node) group_left()
max by (cluster, node) (
  kube_node_status_capacity{job="kube-state-metrics", resource="pods"} != 1
) > 0.95`,
		want: `(
  max by (cluster, instance) (
    kubelet_running_pods{job="kubelet", metrics_path="/metrics"} > 1
  )
  * on (cluster, instance) group_left(node)
  max by (cluster, instance, node) (
    kubelet_node_name{job="kubelet", metrics_path="/metrics"}
  )
)
/ on (cluster, node) group_left()
max by (cluster, node) (
  kube_node_status_capacity{job="kube-state-metrics", resource="pods"} != 1
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeNodeReadinessFlapping",
		expr: `sum(changes(kube_node_status_condition{job="kube-state-metrics",status="true",condition="Ready"}[15m])) by (cluster, node) > 2
and on (cluster, node)
kube_node_spec_unschedulable{job="kube-state-metrics"} == 0`,
		want: `sum(changes(kube_node_status_condition{job="kube-state-metrics",status="true",condition="Ready"}[15m])) by (cluster, node)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeNodeEviction",
		expr: `sum(rate(kubelet_evictions{job="kubelet", metrics_path="/metrics"}[15m])) by(cluster, eviction_signal, instance)
* on (cluster, instance) group_left(node)
max by (cluster, instance, node) (
  kubelet_node_name{job="kubelet", metrics_path="/metrics"}
)
> 0`,
		want: `sum(rate(kubelet_evictions{job="kubelet", metrics_path="/metrics"}[15m])) by(cluster, eviction_signal, instance)
* on (cluster, instance) group_left(node)
max by (cluster, instance, node) (
  kubelet_node_name{job="kubelet", metrics_path="/metrics"}
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletPlegDurationHigh",
		expr:   `node_quantile:kubelet_pleg_relist_duration_seconds:histogram_quantile{quantile="0.99"} >= 10`,
		want:   `node_quantile:kubelet_pleg_relist_duration_seconds:histogram_quantile{quantile="0.99"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletPodStartUpLatencyHigh",
		expr: `histogram_quantile(0.99,
  sum by (cluster, instance, le) (
    topk by (cluster, instance, le, operation_type) (1,
      rate(kubelet_pod_worker_duration_seconds_bucket{job="kubelet", metrics_path="/metrics"}[5m])
    )
  )
)
* on(cluster, instance) group_left(node)
topk by (cluster, instance, node) (1,
  kubelet_node_name{job="kubelet", metrics_path="/metrics"}
)
> 60`,
		want: `histogram_quantile(0.99,
  sum by (cluster, instance, le) (
    topk by (cluster, instance, le, operation_type) (1,
      rate(kubelet_pod_worker_duration_seconds_bucket{job="kubelet", metrics_path="/metrics"}[5m])
    )
  )
)
* on(cluster, instance) group_left(node)
topk by (cluster, instance, node) (1,
  kubelet_node_name{job="kubelet", metrics_path="/metrics"}
)`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletClientCertificateExpiration",
		expr:   `kubelet_certificate_manager_client_ttl_seconds < 604800`,
		want:   `kubelet_certificate_manager_client_ttl_seconds`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletServerCertificateExpiration",
		expr:   `kubelet_certificate_manager_server_ttl_seconds < 604800`,
		want:   `kubelet_certificate_manager_server_ttl_seconds`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletClientCertificateRenewalErrors",
		expr:   `increase(kubelet_certificate_manager_client_expiration_renew_errors[5m]) > 0`,
		want:   `increase(kubelet_certificate_manager_client_expiration_renew_errors[5m])`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletServerCertificateRenewalErrors",
		expr:   `increase(kubelet_server_expiration_renew_errors[5m]) > 0`,
		want:   `increase(kubelet_server_expiration_renew_errors[5m])`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletInstanceUnreachable",
		expr:   `up{job="kubelet", metrics_path="/metrics"} == 0`,
		want:   `up{job="kubelet", metrics_path="/metrics"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeletDown",
		expr: `count by (cluster) (kube_node_info{job="kube-state-metrics"})
unless on (cluster)
count by (cluster) (up{job="kubelet", metrics_path="/metrics"} == 1)`,
		want: `count by (cluster) (kube_node_info{job="kube-state-metrics"})`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeSchedulerDown",
		expr:   `absent(up{job="kube-scheduler"})`,
		absent: true,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeSchedulerInstanceUnreachable",
		expr:   `up{job="kube-scheduler"} == 0`,
		want:   `up{job="kube-scheduler"}`,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeControllerManagerDown",
		expr:   `absent(up{job="kube-controller-manager"})`,
		absent: true,
	},
	{
		source: kubernetesControlPlaneRules,
		alert:  "KubeControllerManagerInstanceUnreachable",
		expr:   `up{job="kube-controller-manager"} == 0`,
		want:   `up{job="kube-controller-manager"}`,
	},
	{
		source: kubeStateMetricsRules,
		alert:  "KubeStateMetricsListErrors",
		expr: `(sum(rate(kube_state_metrics_list_total{job="kube-state-metrics",result="error"}[5m])) by (cluster)
  /
sum(rate(kube_state_metrics_list_total{job="kube-state-metrics"}[5m])) by (cluster))
> 0.01`,
		want: `sum(rate(kube_state_metrics_list_total{job="kube-state-metrics",result="error"}[5m])) by (cluster)
  /
sum(rate(kube_state_metrics_list_total{job="kube-state-metrics"}[5m])) by (cluster)`,
	},
	{
		source: kubeStateMetricsRules,
		alert:  "KubeStateMetricsWatchErrors",
		expr: `(sum(rate(kube_state_metrics_watch_total{job="kube-state-metrics",result="error"}[5m])) by (cluster)
  /
sum(rate(kube_state_metrics_watch_total{job="kube-state-metrics"}[5m])) by (cluster))
> 0.01`,
		want: `sum(rate(kube_state_metrics_watch_total{job="kube-state-metrics",result="error"}[5m])) by (cluster)
  /
sum(rate(kube_state_metrics_watch_total{job="kube-state-metrics"}[5m])) by (cluster)`,
	},
	{
		source: kubeStateMetricsRules,
		alert:  "KubeStateMetricsShardingMismatch",
		expr:   `stdvar (kube_state_metrics_total_shards{job="kube-state-metrics"}) by (cluster) != 0`,
		want:   `stdvar (kube_state_metrics_total_shards{job="kube-state-metrics"}) by (cluster)`,
	},
	{
		source: kubeStateMetricsRules,
		alert:  "KubeStateMetricsShardsMissing",
		expr: `2^max(kube_state_metrics_total_shards{job="kube-state-metrics"}) by (cluster) - 1
  -
sum( 2 ^ max by (cluster, shard_ordinal) (kube_state_metrics_shard_ordinal{job="kube-state-metrics"}) ) by (cluster)
!= 0`,
		want: `2^max(kube_state_metrics_total_shards{job="kube-state-metrics"}) by (cluster) - 1
  -
sum( 2 ^ max by (cluster, shard_ordinal) (kube_state_metrics_shard_ordinal{job="kube-state-metrics"}) ) by (cluster)`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusBadConfig",
		expr: `# Without max_over_time, failed scrapes could create false negatives, see
# https://www.robustperception.io/alerting-on-gauges-in-prometheus-2-0 for details.
max_over_time(prometheus_config_last_reload_successful{job="prometheus-k8s",namespace="monitoring"}[5m]) == 0`,
		want: `max_over_time(prometheus_config_last_reload_successful{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusSDRefreshFailure",
		expr:   `increase(prometheus_sd_refresh_failures_total{job="prometheus-k8s",namespace="monitoring"}[10m]) > 0`,
		want:   `increase(prometheus_sd_refresh_failures_total{job="prometheus-k8s",namespace="monitoring"}[10m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusKubernetesListWatchFailures",
		expr:   `increase(prometheus_sd_kubernetes_failures_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `increase(prometheus_sd_kubernetes_failures_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusNotificationQueueRunningFull",
		expr: `# Without min_over_time, failed scrapes could create false negatives, see
# https://www.robustperception.io/alerting-on-gauges-in-prometheus-2-0 for details.
(
  predict_linear(prometheus_notifications_queue_length{job="prometheus-k8s",namespace="monitoring"}[5m], 60 * 30)
>
  min_over_time(prometheus_notifications_queue_capacity{job="prometheus-k8s",namespace="monitoring"}[5m])
)`,
		want: `predict_linear(prometheus_notifications_queue_length{job="prometheus-k8s",namespace="monitoring"}[5m], 60 * 30)`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusErrorSendingAlertsToSomeAlertmanagers",
		expr: `(
  rate(prometheus_notifications_errors_total{job="prometheus-k8s",namespace="monitoring"}[5m])
/
  rate(prometheus_notifications_sent_total{job="prometheus-k8s",namespace="monitoring"}[5m])
)
* 100
> 1`,
		want: `(
  rate(prometheus_notifications_errors_total{job="prometheus-k8s",namespace="monitoring"}[5m])
/
  rate(prometheus_notifications_sent_total{job="prometheus-k8s",namespace="monitoring"}[5m])
)
* 100`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusNotConnectedToAlertmanagers",
		expr: `# Without max_over_time, failed scrapes could create false negatives, see
# https://www.robustperception.io/alerting-on-gauges-in-prometheus-2-0 for details.
max_over_time(prometheus_notifications_alertmanagers_discovered{job="prometheus-k8s",namespace="monitoring"}[5m]) < 1`,
		want: `max_over_time(prometheus_notifications_alertmanagers_discovered{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusTSDBReloadsFailing",
		expr:   `increase(prometheus_tsdb_reloads_failures_total{job="prometheus-k8s",namespace="monitoring"}[3h]) > 0`,
		want:   `increase(prometheus_tsdb_reloads_failures_total{job="prometheus-k8s",namespace="monitoring"}[3h])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusTSDBCompactionsFailing",
		expr:   `increase(prometheus_tsdb_compactions_failed_total{job="prometheus-k8s",namespace="monitoring"}[3h]) > 0`,
		want:   `increase(prometheus_tsdb_compactions_failed_total{job="prometheus-k8s",namespace="monitoring"}[3h])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusNotIngestingSamples",
		expr: `(
  sum without(type) (rate(prometheus_tsdb_head_samples_appended_total{job="prometheus-k8s",namespace="monitoring"}[5m])) <= 0
and
  (
    sum without(scrape_job) (prometheus_target_metadata_cache_entries{job="prometheus-k8s",namespace="monitoring"}) > 0
  or
    sum without(rule_group) (prometheus_rule_group_rules{job="prometheus-k8s",namespace="monitoring"}) > 0
  )
)`,
		want: `sum without(type) (rate(prometheus_tsdb_head_samples_appended_total{job="prometheus-k8s",namespace="monitoring"}[5m]))`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusDuplicateTimestamps",
		expr:   `rate(prometheus_target_scrapes_sample_duplicate_timestamp_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `rate(prometheus_target_scrapes_sample_duplicate_timestamp_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusOutOfOrderTimestamps",
		expr:   `rate(prometheus_target_scrapes_sample_out_of_order_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `rate(prometheus_target_scrapes_sample_out_of_order_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusRemoteStorageFailures",
		expr: `(
  (rate(prometheus_remote_storage_failed_samples_total{job="prometheus-k8s",namespace="monitoring"}[5m]) or rate(prometheus_remote_storage_samples_failed_total{job="prometheus-k8s",namespace="monitoring"}[5m]))
/
  (
    (rate(prometheus_remote_storage_failed_samples_total{job="prometheus-k8s",namespace="monitoring"}[5m]) or rate(prometheus_remote_storage_samples_failed_total{job="prometheus-k8s",namespace="monitoring"}[5m]))
  +
    (rate(prometheus_remote_storage_succeeded_samples_total{job="prometheus-k8s",namespace="monitoring"}[5m]) or rate(prometheus_remote_storage_samples_total{job="prometheus-k8s",namespace="monitoring"}[5m]))
  )
)
* 100
> 1`,
		want: `(
  (rate(prometheus_remote_storage_failed_samples_total{job="prometheus-k8s",namespace="monitoring"}[5m]) or rate(prometheus_remote_storage_samples_failed_total{job="prometheus-k8s",namespace="monitoring"}[5m]))
/
  (
    (rate(prometheus_remote_storage_failed_samples_total{job="prometheus-k8s",namespace="monitoring"}[5m]) or rate(prometheus_remote_storage_samples_failed_total{job="prometheus-k8s",namespace="monitoring"}[5m]))
  +
    (rate(prometheus_remote_storage_succeeded_samples_total{job="prometheus-k8s",namespace="monitoring"}[5m]) or rate(prometheus_remote_storage_samples_total{job="prometheus-k8s",namespace="monitoring"}[5m]))
  )
)
* 100`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusRemoteWriteBehind",
		expr: `# Without max_over_time, failed scrapes could create false negatives, see
# https://www.robustperception.io/alerting-on-gauges-in-prometheus-2-0 for details.
(
  max_over_time(prometheus_remote_storage_queue_highest_timestamp_seconds{job="prometheus-k8s",namespace="monitoring"}[5m])
-
  max_over_time(prometheus_remote_storage_queue_highest_sent_timestamp_seconds{job="prometheus-k8s",namespace="monitoring"}[5m])
)
> 120`,
		want: `max_over_time(prometheus_remote_storage_queue_highest_timestamp_seconds{job="prometheus-k8s",namespace="monitoring"}[5m])
-
  max_over_time(prometheus_remote_storage_queue_highest_sent_timestamp_seconds{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusRemoteWriteDesiredShards",
		expr: `# Without max_over_time, failed scrapes could create false negatives, see
# https://www.robustperception.io/alerting-on-gauges-in-prometheus-2-0 for details.
(
  max_over_time(prometheus_remote_storage_shards_desired{job="prometheus-k8s",namespace="monitoring"}[5m])
>
  max_over_time(prometheus_remote_storage_shards_max{job="prometheus-k8s",namespace="monitoring"}[5m])
)`,
		want: `max_over_time(prometheus_remote_storage_shards_desired{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusRuleFailures",
		expr:   `increase(prometheus_rule_evaluation_failures_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `increase(prometheus_rule_evaluation_failures_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusMissingRuleEvaluations",
		expr:   `increase(prometheus_rule_group_iterations_missed_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `increase(prometheus_rule_group_iterations_missed_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusTargetLimitHit",
		expr:   `increase(prometheus_target_scrape_pool_exceeded_target_limit_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `increase(prometheus_target_scrape_pool_exceeded_target_limit_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusLabelLimitHit",
		expr:   `increase(prometheus_target_scrape_pool_exceeded_label_limits_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `increase(prometheus_target_scrape_pool_exceeded_label_limits_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusScrapeBodySizeLimitHit",
		expr:   `increase(prometheus_target_scrapes_exceeded_body_size_limit_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `increase(prometheus_target_scrapes_exceeded_body_size_limit_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusScrapeSampleLimitHit",
		expr:   `increase(prometheus_target_scrapes_exceeded_sample_limit_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		want:   `increase(prometheus_target_scrapes_exceeded_sample_limit_total{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusTargetSyncFailure",
		expr:   `increase(prometheus_target_sync_failed_total{job="prometheus-k8s",namespace="monitoring"}[30m]) > 0`,
		want:   `increase(prometheus_target_sync_failed_total{job="prometheus-k8s",namespace="monitoring"}[30m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusHighQueryLoad",
		expr:   `avg_over_time(prometheus_engine_queries{job="prometheus-k8s",namespace="monitoring"}[5m]) / max_over_time(prometheus_engine_queries_concurrent_max{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0.8`,
		want:   `avg_over_time(prometheus_engine_queries{job="prometheus-k8s",namespace="monitoring"}[5m]) / max_over_time(prometheus_engine_queries_concurrent_max{job="prometheus-k8s",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusRules,
		alert:  "PrometheusErrorSendingAlertsToAnyAlertmanager",
		expr:   "min without (alertmanager) (\n  rate(prometheus_notifications_errors_total{job=\"prometheus-k8s\",namespace=\"monitoring\",alertmanager!~``}[5m])\n/\n  rate(prometheus_notifications_sent_total{job=\"prometheus-k8s\",namespace=\"monitoring\",alertmanager!~``}[5m])\n)\n* 100\n> 3",
		want:   "min without (alertmanager) (\n  rate(prometheus_notifications_errors_total{job=\"prometheus-k8s\",namespace=\"monitoring\",alertmanager!~``}[5m])\n/\n  rate(prometheus_notifications_sent_total{job=\"prometheus-k8s\",namespace=\"monitoring\",alertmanager!~``}[5m])\n)\n* 100",
	},
	{
		source: alertmanagerRules,
		alert:  "AlertmanagerFailedReload",
		expr: `# Without max_over_time, failed scrapes could create false negatives, see
# https://www.robustperception.io/alerting-on-gauges-in-prometheus-2-0 for details.
max_over_time(alertmanager_config_last_reload_successful{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m]) == 0`,
		want: `max_over_time(alertmanager_config_last_reload_successful{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m])`,
	},
	{
		source: alertmanagerRules,
		alert:  "AlertmanagerMembersInconsistent",
		expr: `# Without max_over_time, failed scrapes could create false negatives, see
# https://www.robustperception.io/alerting-on-gauges-in-prometheus-2-0 for details.
  max_over_time(alertmanager_cluster_members{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m])
< on (namespace,service) group_left
  count by (namespace,service) (max_over_time(alertmanager_cluster_members{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m]))`,
		want: `max_over_time(alertmanager_cluster_members{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m])`,
	},
	{
		source: alertmanagerRules,
		alert:  "AlertmanagerFailedToSendAlerts",
		expr: `(
  rate(alertmanager_notifications_failed_total{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[15m])
/
  ignoring (reason) group_left rate(alertmanager_notifications_total{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[15m])
)
> 0.01`,
		want: `rate(alertmanager_notifications_failed_total{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[15m])
/
  ignoring (reason) group_left rate(alertmanager_notifications_total{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[15m])`,
	},
	{
		source: alertmanagerRules,
		alert:  "AlertmanagerClusterFailedToSendAlerts",
		expr:   "min by (namespace,service, integration) (\n  rate(alertmanager_notifications_failed_total{job=\"alertmanager-main\",container=\"alertmanager\",namespace=\"monitoring\", integration=~`.*`}[15m])\n/\n  ignoring (reason) group_left rate(alertmanager_notifications_total{job=\"alertmanager-main\",container=\"alertmanager\",namespace=\"monitoring\", integration=~`.*`}[15m]) > 0\n)\n> 0.01",
		want:   "min by (namespace,service, integration) (\n  rate(alertmanager_notifications_failed_total{job=\"alertmanager-main\",container=\"alertmanager\",namespace=\"monitoring\", integration=~`.*`}[15m])\n/\n  ignoring (reason) group_left rate(alertmanager_notifications_total{job=\"alertmanager-main\",container=\"alertmanager\",namespace=\"monitoring\", integration=~`.*`}[15m]) > 0\n)",
	},
	{
		source: alertmanagerRules,
		alert:  "AlertmanagerConfigInconsistent",
		expr: `count by (namespace,service) (
  count_values by (namespace,service) ("config_hash", alertmanager_config_hash{job="alertmanager-main",container="alertmanager",namespace="monitoring"})
)
!= 1`,
		want: `count by (namespace,service) (
  count_values by (namespace,service) ("config_hash", alertmanager_config_hash{job="alertmanager-main",container="alertmanager",namespace="monitoring"})
)`,
	},
	{
		source: alertmanagerRules,
		alert:  "AlertmanagerClusterDown",
		expr: `(
  count by (namespace,service) (
    avg_over_time(up{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m]) < 0.5
  )
/
  count by (namespace,service) (
    up{job="alertmanager-main",container="alertmanager",namespace="monitoring"}
  )
)
>= 0.5`,
		want: `count by (namespace,service) (
    avg_over_time(up{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m]) < 0.5
  )
/
  count by (namespace,service) (
    up{job="alertmanager-main",container="alertmanager",namespace="monitoring"}
  )`,
	},
	{
		source: alertmanagerRules,
		alert:  "AlertmanagerClusterCrashlooping",
		expr: `(
  count by (namespace,service) (
    changes(process_start_time_seconds{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[10m]) > 4
  )
/
  count by (namespace,service) (
    up{job="alertmanager-main",container="alertmanager",namespace="monitoring"}
  )
)
>= 0.5`,
		want: `count by (namespace,service) (
    changes(process_start_time_seconds{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[10m]) > 4
  )
/
  count by (namespace,service) (
    up{job="alertmanager-main",container="alertmanager",namespace="monitoring"}
  )`,
	},
	{
		source: alertmanagerRules,
		alert:  "AlertmanagerClusterFailedPeers",
		expr: `# Without max_over_time, failed scrapes could create false negatives, see
# https://www.robustperception.io/alerting-on-gauges-in-prometheus-2-0 for details.
max_over_time(alertmanager_cluster_failed_peers{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m]) > 0`,
		want: `max_over_time(alertmanager_cluster_failed_peers{job="alertmanager-main",container="alertmanager",namespace="monitoring"}[5m])`,
	},
	{
		source: kubePrometheusRules,
		alert:  "TargetDown",
		expr:   `100 * (count(up == 0) BY (cluster, job, namespace, service) / count(up) BY (cluster, job, namespace, service)) > 10`,
		want:   `100 * (count(up == 0) BY (cluster, job, namespace, service) / count(up) BY (cluster, job, namespace, service))`,
	},
	{
		source: kubePrometheusRules,
		alert:  "Watchdog",
		expr:   `vector(1)`,
	},
	{
		source: kubePrometheusRules,
		alert:  "InfoInhibitor",
		expr:   `group by (namespace) (ALERTS{severity = "info"} == 1) unless on (namespace) group by (namespace) (ALERTS{alertname != "InfoInhibitor", alertstate = "firing", severity =~ "warning|critical"} == 1)`,
		want:   `group by (namespace) (ALERTS{severity = "info"} == 1)`,
	},
	{
		source: kubePrometheusRules,
		alert:  "NodeNetworkInterfaceFlapping",
		expr:   `changes(node_network_up{job="node-exporter",device!~"veth.+"}[2m]) > 2`,
		want:   `changes(node_network_up{job="node-exporter",device!~"veth.+"}[2m])`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "PrometheusOperatorListErrors",
		expr:   `(sum by (cluster,controller,namespace) (rate(prometheus_operator_list_operations_failed_total{job="prometheus-operator",namespace="monitoring"}[10m])) / sum by (cluster,controller,namespace) (rate(prometheus_operator_list_operations_total{job="prometheus-operator",namespace="monitoring"}[10m]))) > 0.4`,
		want:   `sum by (cluster,controller,namespace) (rate(prometheus_operator_list_operations_failed_total{job="prometheus-operator",namespace="monitoring"}[10m])) / sum by (cluster,controller,namespace) (rate(prometheus_operator_list_operations_total{job="prometheus-operator",namespace="monitoring"}[10m]))`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "PrometheusOperatorWatchErrors",
		expr:   `(sum by (cluster,controller,namespace) (rate(prometheus_operator_watch_operations_failed_total{job="prometheus-operator",namespace="monitoring"}[5m])) / sum by (cluster,controller,namespace) (rate(prometheus_operator_watch_operations_total{job="prometheus-operator",namespace="monitoring"}[5m]))) > 0.4`,
		want:   `sum by (cluster,controller,namespace) (rate(prometheus_operator_watch_operations_failed_total{job="prometheus-operator",namespace="monitoring"}[5m])) / sum by (cluster,controller,namespace) (rate(prometheus_operator_watch_operations_total{job="prometheus-operator",namespace="monitoring"}[5m]))`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "PrometheusOperatorSyncFailed",
		expr:   `min_over_time(prometheus_operator_syncs{status="failed",job="prometheus-operator",namespace="monitoring"}[5m]) > 0`,
		want:   `min_over_time(prometheus_operator_syncs{status="failed",job="prometheus-operator",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "PrometheusOperatorReconcileErrors",
		expr:   `(sum by (cluster,controller,namespace) (rate(prometheus_operator_reconcile_errors_total{job="prometheus-operator",namespace="monitoring"}[5m]))) / (sum by (cluster,controller,namespace) (rate(prometheus_operator_reconcile_operations_total{job="prometheus-operator",namespace="monitoring"}[5m]))) > 0.1`,
		want:   `(sum by (cluster,controller,namespace) (rate(prometheus_operator_reconcile_errors_total{job="prometheus-operator",namespace="monitoring"}[5m]))) / (sum by (cluster,controller,namespace) (rate(prometheus_operator_reconcile_operations_total{job="prometheus-operator",namespace="monitoring"}[5m])))`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "PrometheusOperatorStatusUpdateErrors",
		expr:   `(sum by (cluster,controller,namespace) (rate(prometheus_operator_status_update_errors_total{job="prometheus-operator",namespace="monitoring"}[5m]))) / (sum by (cluster,controller,namespace) (rate(prometheus_operator_status_update_operations_total{job="prometheus-operator",namespace="monitoring"}[5m]))) > 0.1`,
		want:   `(sum by (cluster,controller,namespace) (rate(prometheus_operator_status_update_errors_total{job="prometheus-operator",namespace="monitoring"}[5m]))) / (sum by (cluster,controller,namespace) (rate(prometheus_operator_status_update_operations_total{job="prometheus-operator",namespace="monitoring"}[5m])))`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "PrometheusOperatorNodeLookupErrors",
		expr:   `rate(prometheus_operator_node_address_lookup_errors_total{job="prometheus-operator",namespace="monitoring"}[5m]) > 0.1`,
		want:   `rate(prometheus_operator_node_address_lookup_errors_total{job="prometheus-operator",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "PrometheusOperatorNotReady",
		expr:   `min by (cluster,controller,namespace) (max_over_time(prometheus_operator_ready{job="prometheus-operator",namespace="monitoring"}[5m]) == 0)`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "PrometheusOperatorRejectedResources",
		expr:   `min_over_time(prometheus_operator_managed_resources{state="rejected",job="prometheus-operator",namespace="monitoring"}[5m]) > 0`,
		want:   `min_over_time(prometheus_operator_managed_resources{state="rejected",job="prometheus-operator",namespace="monitoring"}[5m])`,
	},
	{
		source: prometheusOperatorRules,
		alert:  "ConfigReloaderSidecarErrors",
		expr:   `max_over_time(reloader_last_reload_successful{namespace=~".+"}[5m]) == 0`,
		want:   `max_over_time(reloader_last_reload_successful{namespace=~".+"}[5m])`,
	},
	{
		source: grafanaRules,
		alert:  "GrafanaRequestsFailing",
		expr: `100 * sum without (status_code) (namespace_job_handler_statuscode:grafana_http_request_duration_seconds_count:rate5m{handler!~"/api/datasources/proxy/:id.*|/api/ds/query|/api/tsdb/query", status_code=~"5.."})
/
sum without (status_code) (namespace_job_handler_statuscode:grafana_http_request_duration_seconds_count:rate5m{handler!~"/api/datasources/proxy/:id.*|/api/ds/query|/api/tsdb/query"})
> 50`,
		want: `100 * sum without (status_code) (namespace_job_handler_statuscode:grafana_http_request_duration_seconds_count:rate5m{handler!~"/api/datasources/proxy/:id.*|/api/ds/query|/api/tsdb/query", status_code=~"5.."})
/
sum without (status_code) (namespace_job_handler_statuscode:grafana_http_request_duration_seconds_count:rate5m{handler!~"/api/datasources/proxy/:id.*|/api/ds/query|/api/tsdb/query"})`,
	},
	{
		source: thanosRules,
		alert:  "ThanosCompactHalted",
		expr:   `thanos_compact_halted{job=~".*thanos-compact.*"} == 1`,
		want:   `thanos_compact_halted{job=~".*thanos-compact.*"}`,
	},
	{
		source: thanosRules,
		alert:  "ThanosCompactHighCompactionFailures",
		expr: `(
  sum by (job) (rate(thanos_compact_group_compactions_failures_total{job=~".*thanos-compact.*"}[5m]))
/
  sum by (job) (rate(thanos_compact_group_compactions_total{job=~".*thanos-compact.*"}[5m]))
* 100 > 5
)`,
		want: `sum by (job) (rate(thanos_compact_group_compactions_failures_total{job=~".*thanos-compact.*"}[5m]))
/
  sum by (job) (rate(thanos_compact_group_compactions_total{job=~".*thanos-compact.*"}[5m]))
* 100`,
	},
	{
		source: thanosRules,
		alert:  "ThanosCompactHasNotRun",
		expr:   `(time() - max by (job) (max_over_time(thanos_objstore_bucket_last_successful_upload_time{job=~".*thanos-compact.*"}[24h]))) / 60 / 60 > 24`,
		want:   `(time() - max by (job) (max_over_time(thanos_objstore_bucket_last_successful_upload_time{job=~".*thanos-compact.*"}[24h]))) / 60 / 60`,
	},
	{
		source: thanosRules,
		alert:  "ThanosQueryHttpRequestQueryErrorRateHigh",
		expr: `(
  sum by (job) (rate(http_requests_total{code=~"5..", job=~".*thanos-query.*", handler="query"}[5m]))
/
  sum by (job) (rate(http_requests_total{job=~".*thanos-query.*", handler="query"}[5m]))
) * 100 > 5`,
		want: `(
  sum by (job) (rate(http_requests_total{code=~"5..", job=~".*thanos-query.*", handler="query"}[5m]))
/
  sum by (job) (rate(http_requests_total{job=~".*thanos-query.*", handler="query"}[5m]))
) * 100`,
	},
	{
		source: thanosRules,
		alert:  "ThanosQueryInstantLatencyHigh",
		expr: `(
  histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket{job=~".*thanos-query.*", handler="query"}[5m]))) > 40
and
  sum by (job) (rate(http_request_duration_seconds_bucket{job=~".*thanos-query.*", handler="query"}[5m])) > 0
)`,
		want: `histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket{job=~".*thanos-query.*", handler="query"}[5m])))`,
	},
	{
		source: thanosRules,
		alert:  "ThanosReceiveHighReplicationFailures",
		expr: `thanos_receive_replication_factor > 1
  and
(
  (
    sum by (job) (rate(thanos_receive_replications_total{result="error", job=~".*thanos-receive.*"}[5m]))
  /
    sum by (job) (rate(thanos_receive_replications_total{job=~".*thanos-receive.*"}[5m]))
  )
  >
  (
    max by (job) (floor((thanos_receive_replication_factor{job=~".*thanos-receive.*"}+1) / 2))
  /
    max by (job) (thanos_receive_hashring_nodes{job=~".*thanos-receive.*"})
  )
) * 100`,
		want: `thanos_receive_replication_factor`,
	},
	{
		source: thanosRules,
		alert:  "ThanosReceiveConfigReloadFailure",
		expr:   `avg by (job) (thanos_receive_config_last_reload_successful{job=~".*thanos-receive.*"}) != 1`,
		want:   `avg by (job) (thanos_receive_config_last_reload_successful{job=~".*thanos-receive.*"})`,
	},
	{
		source: thanosRules,
		alert:  "ThanosReceiveNoUpload",
		expr: `(up{job=~".*thanos-receive.*"} - 1)
+ on (job, instance) # filters to only alert on current instance last 3h
(sum by (job, instance) (increase(thanos_shipper_uploads_total{job=~".*thanos-receive.*"}[3h])) == 0)`,
	},
	{
		source: thanosRules,
		alert:  "ThanosRuleRuleEvaluationLatencyHigh",
		expr: `(
  sum by (job, instance, rule_group) (prometheus_rule_group_last_duration_seconds{job=~".*thanos-rule.*"})
>
  sum by (job, instance, rule_group) (prometheus_rule_group_interval_seconds{job=~".*thanos-rule.*"})
)`,
		want: `sum by (job, instance, rule_group) (prometheus_rule_group_last_duration_seconds{job=~".*thanos-rule.*"})`,
	},
	{
		source: thanosRules,
		alert:  "ThanosRuleNoEvaluationFor10Intervals",
		expr: `time() -  max by (job, instance, group) (prometheus_rule_group_last_evaluation_timestamp_seconds{job=~".*thanos-rule.*"})
>
10 * max by (job, instance, group) (prometheus_rule_group_interval_seconds{job=~".*thanos-rule.*"})`,
		want: `time() -  max by (job, instance, group) (prometheus_rule_group_last_evaluation_timestamp_seconds{job=~".*thanos-rule.*"})`,
	},
	{
		source: thanosRules,
		alert:  "ThanosNoRuleEvaluations",
		expr: `sum by (job, instance) (rate(prometheus_rule_evaluations_total{job=~".*thanos-rule.*"}[5m])) <= 0
  and
sum by (job, instance) (thanos_rule_loaded_rules{job=~".*thanos-rule.*"}) > 0`,
		want: `sum by (job, instance) (rate(prometheus_rule_evaluations_total{job=~".*thanos-rule.*"}[5m]))`,
	},
	{
		source: thanosRules,
		alert:  "ThanosBucketReplicateErrorRate",
		expr: `(
  sum by (job) (rate(thanos_replicate_replication_runs_total{result="error", job=~".*thanos-bucket-replicate.*"}[5m]))
/ on (job) group_left
  sum by (job) (rate(thanos_replicate_replication_runs_total{job=~".*thanos-bucket-replicate.*"}[5m]))
) * 100 >= 10`,
		want: `(
  sum by (job) (rate(thanos_replicate_replication_runs_total{result="error", job=~".*thanos-bucket-replicate.*"}[5m]))
/ on (job) group_left
  sum by (job) (rate(thanos_replicate_replication_runs_total{job=~".*thanos-bucket-replicate.*"}[5m]))
) * 100`,
	},
	{
		source: thanosRules,
		alert:  "ThanosCompactIsDown",
		expr:   `absent(up{job=~".*thanos-compact.*"} == 1)`,
		absent: true,
	},
	{
		source: awesomeRules,
		alert:  "Prometheus target missing with warmup time",
		expr:   `sum by (instance, job) ((up == 0) * on (instance) group_left(__name__) (node_time_seconds - node_boot_time_seconds > 600))`,
	},
	{
		source: awesomeRules,
		alert:  "Prometheus job missing",
		expr:   `absent(up{job="prometheus"})`,
		absent: true,
	},
	{
		source: awesomeRules,
		alert:  "Container absent",
		expr:   `absent(container_last_seen)`,
		absent: true,
	},
	{
		source: awesomeRules,
		alert:  "eBPF exporter no enabled configs",
		expr:   `ebpf_exporter_enabled_configs == 0 or absent(ebpf_exporter_enabled_configs)`,
	},
	{
		source: awesomeRules,
		alert:  "Kubernetes Container oom killer",
		expr:   `(kube_pod_container_status_restarts_total - kube_pod_container_status_restarts_total offset 10m >= 1) and ignoring (reason) min_over_time(kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}[10m]) == 1`,
		want:   `kube_pod_container_status_restarts_total - kube_pod_container_status_restarts_total offset 10m`,
	},
	{
		source: awesomeRules,
		alert:  "Kubernetes CronJob too long",
		expr:   `kube_job_status_start_time > 0 and absent(kube_job_status_completion_time) and (time() - kube_job_status_start_time) > 3600`,
		want:   `kube_job_status_start_time`,
	},
	{
		source: awesomeRules,
		alert:  "Ceph monitor quorum at risk",
		expr:   `(ceph_health_detail{name="MON_DOWN"} == 1) * on() group_right() (count(ceph_mon_quorum_status == 1) == bool (floor(count(ceph_mon_metadata) / 2) + 1)) == 1`,
		want:   `(ceph_health_detail{name="MON_DOWN"} == 1) * on() group_right() (count(ceph_mon_quorum_status == 1) == bool (floor(count(ceph_mon_metadata) / 2) + 1))`,
	},
}
