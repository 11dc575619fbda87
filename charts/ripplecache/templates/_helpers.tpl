{{/* Chart name, overridable. */}}
{{- define "ripplecache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-<chart>, or <release> when it already contains the chart name. */}}
{{- define "ripplecache.fullname" -}}
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

{{- define "ripplecache.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "ripplecache.labels" -}}
helm.sh/chart: {{ include "ripplecache.chart" . }}
{{ include "ripplecache.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ripplecache
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selects the operator pods. */}}
{{- define "ripplecache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ripplecache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "ripplecache.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ripplecache.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image reference. */}}
{{- define "ripplecache.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "ripplecache.sidecarImage" -}}
{{- printf "%s:%s" .Values.sidecar.image.repository (default .Chart.AppVersion .Values.sidecar.image.tag) -}}
{{- end -}}

{{/* Namespaces the operator reconciles: watchNamespaces, or the release namespace with rbac.scope namespace, or [] (all). */}}
{{- define "ripplecache.watchNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- join "," (uniq .Values.watchNamespaces) -}}
{{- else if eq .Values.rbac.scope "namespace" -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "ripplecache.leaseName" -}}
{{- printf "%s-leader" (include "ripplecache.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ripplecache.webhookServiceName" -}}
{{- printf "%s-webhook" (include "ripplecache.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ripplecache.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "ripplecache.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ripplecache.webhookConfigurationName" -}}
{{- printf "%s-sidecar-injector" (include "ripplecache.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ripplecache.webhookCertificateName" -}}
{{- printf "%s-webhook" (include "ripplecache.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ripplecache.metricsServiceName" -}}
{{- printf "%s-metrics" (include "ripplecache.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* True (non-empty) when the operator manages the webhook certificate itself. */}}
{{- define "ripplecache.selfManagedCert" -}}
{{- if and .Values.webhook.enabled (not .Values.webhook.certManager.enabled) -}}true{{- end -}}
{{- end -}}

{{/*
The rules the operator needs on CacheClusters and their children, in every namespace it reconciles.
Children are written with server-side apply (patch, and create the first time) and removed when the
spec no longer asks for them (delete); the informers list and watch them. Secrets are only read (the
Redis password, for CONFIG SET); nothing here allows writing a Secret or touching any other kind.
*/}}
{{- define "ripplecache.managerRules" -}}
- apiGroups: ["cache.ripplecache.io"]
  resources: ["cacheclusters"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["cache.ripplecache.io"]
  resources: ["cacheclusters/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["apps"]
  resources: ["statefulsets", "deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Failover: the Redis pods' readiness (list, watch) and their role label (patch; also the role labels of
# Redis Cluster shard pods); rolling updates of replication (OnDelete): delete one Redis pod at a time (by
# uid). Never create.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "patch", "delete"]
{{- end -}}
