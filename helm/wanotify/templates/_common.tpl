{{/*
Names, labels and the pieces every workload shares.
*/}}

{{- define "wanotify.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wanotify.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "wanotify.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "wanotify.labels" -}}
helm.sh/chart: {{ include "wanotify.chart" . }}
app.kubernetes.io/name: {{ include "wanotify.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wanotify
{{- end -}}

{{/* Selector labels of one service: (dict "root" $ "svc" "ingest"). */}}
{{- define "wanotify.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wanotify.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .svc }}
{{- end -}}

{{- define "wanotify.componentLabels" -}}
{{ include "wanotify.labels" .root }}
app.kubernetes.io/component: {{ .svc }}
{{- end -}}

{{/*
What the chart knows about each long-running service: the port it listens
on, the variable that sets the listen address, its probe paths, and for
ingest and webhook the admin port apart from the public one (probes and
metrics are served only there, so an Ingress to the public port cannot
expose them).
*/}}
{{- define "wanotify.serviceMeta" -}}
ingest:
  port: 8080
  portName: http
  addrVar: WANOTIFY_INGEST_ADDR
  adminPort: 9466
  readyPath: /readyz
  livePath: /healthz
  metrics: true
  kafka: true
dispatcher:
  port: 9464
  portName: admin
  addrVar: WANOTIFY_ADMIN_ADDR
  readyPath: /readyz
  livePath: /healthz
  metrics: true
  kafka: true
webhook:
  port: 8081
  portName: http
  addrVar: WANOTIFY_WEBHOOK_ADDR
  adminPort: 9467
  readyPath: /readyz
  livePath: /healthz
  metrics: true
  kafka: true
sink:
  port: 9465
  portName: admin
  addrVar: WANOTIFY_ADMIN_ADDR
  readyPath: /readyz
  livePath: /healthz
  metrics: true
  kafka: true
simulator:
  port: 8090
  portName: http
  addrVar: WANOTIFY_SIM_ADDR
  readyPath: /healthz
  livePath: /healthz
  metrics: false
  kafka: false
{{- end -}}

{{/* Name of the port probes and ServiceMonitors use: (dict "meta" $m). */}}
{{- define "wanotify.adminPortName" -}}
{{- if .meta.adminPort -}}admin{{- else -}}{{ .meta.portName }}{{- end -}}
{{- end -}}

{{/* Image reference of one service: (dict "root" $ "svc" "ingest"). */}}
{{- define "wanotify.image" -}}
{{- $img := .root.Values.image -}}
{{- $repo := printf "%s-%s" $img.repository .svc -}}
{{- $digest := index ($img.digests | default dict) .svc | default "" -}}
{{- if $digest -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else -}}
{{- printf "%s:%s" $repo ($img.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "wanotify.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wanotify.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The topics.yaml the setup job applies. */}}
{{- define "wanotify.topicsFile" -}}
{{- if .Values.topics.file -}}
{{- .Values.topics.file -}}
{{- else -}}
{{- .Files.Get "files/topics.yaml" -}}
{{- end -}}
{{- end -}}

{{/*
Partition count of notifications.requested in that file: the most
dispatchers (and sinks) that get work.
*/}}
{{- define "wanotify.partitions" -}}
{{- $f := include "wanotify.topicsFile" . | fromYaml -}}
{{- if hasKey $f "Error" -}}
{{- fail (printf "topics.file is not valid YAML: %s" (get $f "Error")) -}}
{{- end -}}
{{- $n := int (dig "defaults" "partitions" 0 $f) -}}
{{- range (get $f "topics" | default list) -}}
{{- if and (eq (.name | default "") "notifications.requested") .partitions -}}
{{- $n = int .partitions -}}
{{- end -}}
{{- end -}}
{{- if lt $n 1 -}}
{{- fail "topics: no partition count for notifications.requested (defaults.partitions or the topic's partitions)" -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{/* Mount directories of the TLS material. */}}
{{- define "wanotify.kafkaTLSDir" -}}/etc/wanotify/tls/kafka{{- end -}}
{{- define "wanotify.clickhouseTLSDir" -}}/etc/wanotify/tls/clickhouse{{- end -}}

{{/*
Variables every Kafka-using service shares, as a YAML map of name to
string. Rendered into the common ConfigMap, and inline into the setup job
(which runs before the ConfigMap exists).
*/}}
{{- define "wanotify.kafkaEnv" -}}
{{- $k := .Values.kafka -}}
WANOTIFY_KAFKA_BROKERS: {{ join "," $k.brokers | quote }}
WANOTIFY_KAFKA_TLS: {{ $k.tls.enabled | toString | quote }}
{{- if and $k.tls.enabled $k.tls.secretName }}
{{- if $k.tls.caKey }}
WANOTIFY_KAFKA_TLS_CA_FILE: {{ printf "%s/%s" (include "wanotify.kafkaTLSDir" .) $k.tls.caKey | quote }}
{{- end }}
{{- if $k.tls.certKey }}
WANOTIFY_KAFKA_TLS_CERT_FILE: {{ printf "%s/%s" (include "wanotify.kafkaTLSDir" .) $k.tls.certKey | quote }}
WANOTIFY_KAFKA_TLS_KEY_FILE: {{ printf "%s/%s" (include "wanotify.kafkaTLSDir" .) $k.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- if and $k.tls.enabled $k.tls.serverName }}
WANOTIFY_KAFKA_TLS_SERVER_NAME: {{ $k.tls.serverName | quote }}
{{- end }}
{{- if $k.sasl.mechanism }}
WANOTIFY_KAFKA_SASL_MECHANISM: {{ $k.sasl.mechanism | quote }}
{{- end }}
{{- end -}}

{{/*
Each service is its own Kafka principal (least privilege: the ACLs of
docs/deployment.md give each only what it uses): the user name of one
service, (dict "root" $ "svc" "ingest"), and the Secret key of its
password, WANOTIFY_KAFKA_SASL_PASSWORD_<SERVICE>.
*/}}
{{- define "wanotify.kafkaUser" -}}
{{- index .root.Values.kafka.sasl.users .svc -}}
{{- end -}}
{{- define "wanotify.kafkaPasswordKey" -}}
{{- printf "WANOTIFY_KAFKA_SASL_PASSWORD_%s" (upper .svc) -}}
{{- end -}}

{{/* Telemetry and shutdown variables of every wanotify service. */}}
{{- define "wanotify.runtimeEnv" -}}
{{- $t := .Values.telemetry -}}
WANOTIFY_LOG_LEVEL: {{ $t.logLevel | quote }}
WANOTIFY_OTLP_ENDPOINT: {{ $t.otlpEndpoint | quote }}
WANOTIFY_OTLP_INSECURE: {{ $t.otlpInsecure | toString | quote }}
WANOTIFY_TRACE_SAMPLE_RATIO: {{ $t.traceSampleRatio | toString | quote }}
WANOTIFY_SHUTDOWN_READINESS_GRACE: {{ printf "%ds" (int .Values.shutdown.readinessGraceSeconds) | quote }}
WANOTIFY_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.shutdown.timeoutSeconds) | quote }}
{{- end -}}

{{/*
ClickHouse variables of the sink and of ingest (the password comes from
the Secret): (dict "root" $ "svc" "sink"). The sink writes as
clickhouse.username; ingest reads as clickhouse.readerUsername, a user
with SELECT only.
*/}}
{{- define "wanotify.clickhouseEnv" -}}
{{- $c := .root.Values.clickhouse -}}
WANOTIFY_CLICKHOUSE_ADDR: {{ $c.addr | quote }}
WANOTIFY_CLICKHOUSE_DATABASE: {{ $c.database | quote }}
WANOTIFY_CLICKHOUSE_USERNAME: {{ ternary $c.readerUsername $c.username (eq .svc "ingest") | quote }}
WANOTIFY_CLICKHOUSE_TLS: {{ $c.tls.enabled | toString | quote }}
{{- if and $c.tls.enabled $c.tls.secretName }}
{{- if $c.tls.caKey }}
WANOTIFY_CLICKHOUSE_TLS_CA_FILE: {{ printf "%s/%s" (include "wanotify.clickhouseTLSDir" .root) $c.tls.caKey | quote }}
{{- end }}
{{- if $c.tls.certKey }}
WANOTIFY_CLICKHOUSE_TLS_CERT_FILE: {{ printf "%s/%s" (include "wanotify.clickhouseTLSDir" .root) $c.tls.certKey | quote }}
WANOTIFY_CLICKHOUSE_TLS_KEY_FILE: {{ printf "%s/%s" (include "wanotify.clickhouseTLSDir" .root) $c.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Variables of one service the chart sets besides the shared ones, as a YAML
map: (dict "root" $ "svc" "dispatcher"). The service's `env` map is merged
over them by the ConfigMap.
*/}}
{{- define "wanotify.serviceEnv" -}}
{{- $root := .root -}}
{{- $meta := index (include "wanotify.serviceMeta" $root | fromYaml) .svc -}}
{{ $meta.addrVar }}: {{ printf "0.0.0.0:%d" (int $meta.port) | quote }}
{{- if $meta.adminPort }}
WANOTIFY_ADMIN_ADDR: {{ printf "0.0.0.0:%d" (int $meta.adminPort) | quote }}
{{- end }}
{{- if and $meta.kafka $root.Values.kafka.sasl.mechanism }}
WANOTIFY_KAFKA_SASL_USERNAME: {{ include "wanotify.kafkaUser" . | quote }}
{{- end }}
{{- if eq .svc "dispatcher" }}
{{- $d := $root.Values.dispatcher }}
WANOTIFY_PROVIDER: {{ $d.provider | quote }}
{{- if eq $d.provider "xpressbot" }}
WANOTIFY_XPRESSBOT_BASE_URL: {{ include "wanotify.xpressbotURL" $root | quote }}
{{- if not $d.xpressbot.baseURL }}
{{- /* The release's simulator answers plain http inside the cluster. */}}
WANOTIFY_PROVIDER_ALLOW_INSECURE_URL: "true"
{{- end }}
{{- else if $d.cloudapi.phoneNumberID }}
WANOTIFY_CLOUDAPI_PHONE_NUMBER_ID: {{ $d.cloudapi.phoneNumberID | quote }}
{{- end }}
{{- end }}
{{- if eq .svc "simulator" }}
{{- $wh := $root.Values.webhook.env | default dict }}
WANOTIFY_SIM_LEDGER_MAX_ENTRIES: {{ $root.Values.simulator.ledgerMaxEntries | int | toString | quote }}
WANOTIFY_SIM_WEBHOOK_URL: {{ printf "http://%s-webhook:%d%s" (include "wanotify.fullname" $root) (int $root.Values.webhook.service.port) (get $wh "WANOTIFY_WEBHOOK_PATH" | default "/v1/webhooks/whatsapp") | quote }}
{{- end }}
{{- end -}}

{{/* Where the dispatcher sends: the configured origin or the simulator. */}}
{{- define "wanotify.xpressbotURL" -}}
{{- if .Values.dispatcher.xpressbot.baseURL -}}
{{- .Values.dispatcher.xpressbot.baseURL -}}
{{- else if .Values.simulator.enabled -}}
{{- printf "http://%s-simulator:%d" (include "wanotify.fullname" .) (int .Values.simulator.service.port) -}}
{{- else -}}
{{- fail "dispatcher.xpressbot.baseURL is required: set it to your Xpressbot origin (or set dispatcher.provider=cloudapi), or set simulator.enabled=true to try the pipeline against the simulator (ci/simulator-values.yaml)" -}}
{{- end -}}
{{- end -}}

{{/*
One secret variable as an env entry: (dict "root" $ "var" "NAME"
"optional" bool "as" "OTHER_NAME"). `as` names the variable in the
container when it differs from the Secret's (the simulator reads the
provider key and webhook secret under its own names).
*/}}
{{- define "wanotify.secretEnv" -}}
{{- $root := .root -}}
{{- $refs := $root.Values.secrets.refs | default dict -}}
{{- $ref := get $refs .var | default dict -}}
{{- $name := $ref.name | default ($root.Values.secrets.existingSecret | default (include "wanotify.fullname" $root)) -}}
{{- $key := $ref.key | default .var -}}
- name: {{ .as | default .var }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $key }}
      optional: {{ .optional }}
{{- end -}}

{{/* The secret variables of one service: (dict "root" $ "svc" "ingest"). */}}
{{- define "wanotify.secretEnvs" -}}
{{- $root := .root -}}
{{- $meta := index (include "wanotify.serviceMeta" $root | fromYaml) .svc -}}
{{- if and $meta.kafka $root.Values.kafka.sasl.mechanism }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" (include "wanotify.kafkaPasswordKey" .) "optional" false "as" "WANOTIFY_KAFKA_SASL_PASSWORD") }}
{{- end }}
{{- if eq .svc "ingest" }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_INGEST_API_KEYS" "optional" false) }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_CLICKHOUSE_READER_PASSWORD" "optional" true "as" "WANOTIFY_CLICKHOUSE_PASSWORD") }}
{{- else if eq .svc "dispatcher" }}
{{- if eq $root.Values.dispatcher.provider "xpressbot" }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_XPRESSBOT_API_KEY" "optional" false) }}
{{- else }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_CLOUDAPI_ACCESS_TOKEN" "optional" false) }}
{{- end }}
{{- range $var, $ref := ($root.Values.senders.credentials | default dict) }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
      optional: false
{{- end }}
{{- else if eq .svc "webhook" }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_WEBHOOK_SECRET" "optional" false) }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_WEBHOOK_VERIFY_TOKEN" "optional" true) }}
{{- else if eq .svc "sink" }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_CLICKHOUSE_PASSWORD" "optional" true) }}
{{- else if eq .svc "simulator" }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_XPRESSBOT_API_KEY" "optional" false "as" "WANOTIFY_SIM_API_KEY") }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_WEBHOOK_SECRET" "optional" false "as" "WANOTIFY_SIM_WEBHOOK_SECRET") }}
{{ include "wanotify.secretEnv" (dict "root" $root "var" "WANOTIFY_SIM_ADMIN_TOKEN" "optional" false) }}
{{- end }}
{{- end -}}

{{/* Volumes and mounts for the TLS secrets a service needs. */}}
{{- define "wanotify.tlsVolumes" -}}
{{- $root := .root -}}
{{- $meta := index (include "wanotify.serviceMeta" $root | fromYaml) .svc -}}
{{- if and $meta.kafka $root.Values.kafka.tls.enabled $root.Values.kafka.tls.secretName }}
- name: kafka-tls
  secret:
    secretName: {{ $root.Values.kafka.tls.secretName }}
{{- end }}
{{- if and (has .svc (list "sink" "ingest")) $root.Values.clickhouse.tls.enabled $root.Values.clickhouse.tls.secretName }}
- name: clickhouse-tls
  secret:
    secretName: {{ $root.Values.clickhouse.tls.secretName }}
{{- end }}
{{- end -}}

{{- define "wanotify.tlsMounts" -}}
{{- $root := .root -}}
{{- $meta := index (include "wanotify.serviceMeta" $root | fromYaml) .svc -}}
{{- if and $meta.kafka $root.Values.kafka.tls.enabled $root.Values.kafka.tls.secretName }}
- name: kafka-tls
  mountPath: {{ include "wanotify.kafkaTLSDir" $root }}
  readOnly: true
{{- end }}
{{- if and (has .svc (list "sink" "ingest")) $root.Values.clickhouse.tls.enabled $root.Values.clickhouse.tls.secretName }}
- name: clickhouse-tls
  mountPath: {{ include "wanotify.clickhouseTLSDir" $root }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Whether the release mounts a sender registry. */}}
{{- define "wanotify.sendersConfigMap" -}}
{{- if .Values.senders.existingConfigMap -}}
{{ .Values.senders.existingConfigMap }}
{{- else if .Values.senders.registry -}}
{{ include "wanotify.fullname" . }}-senders
{{- end -}}
{{- end -}}

{{/* Where ingest and the dispatcher read the sender registry. */}}
{{- define "wanotify.sendersDir" -}}/etc/wanotify/senders{{- end -}}
