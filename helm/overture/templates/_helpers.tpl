{{/* Names: <release>-overture unless the release is already called so, 63 at most. */}}
{{- define "overture.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "overture.fullname" -}}
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

{{/* A component's name: <fullname>-web, -worker, ... (the fullname keeps room for it). */}}
{{- define "overture.componentName" -}}
{{- printf "%s-%s" (include "overture.fullname" .root | trunc 52 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "overture.selectorLabels" -}}
app.kubernetes.io/name: {{ include "overture.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "overture.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "overture.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: overture
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Labels of the release as a whole (ConfigMap, ServiceAccount, ...). */}}
{{- define "overture.commonLabels" -}}
{{ include "overture.labels" (dict "root" . "component" "overture") }}
{{- end -}}

{{- define "overture.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "overture.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "overture.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
One variable from an existing Secret: (dict "root" $ "var" "DATABASE_URL" "ref" "databaseUrl").
The entry's own secretName wins over secrets.existingSecret; no Secret at all stops the
render naming the value to set.
*/}}
{{- define "overture.secretEnv" -}}
{{- $ref := index .root.Values.secrets .ref -}}
{{- $name := default .root.Values.secrets.existingSecret $ref.secretName -}}
{{- if not $name -}}
{{- fail (printf "secrets.%s: name the Secret holding %s (secrets.%s.secretName or secrets.existingSecret); the chart never takes secret values in plain text" .ref .var .ref) -}}
{{- end -}}
- name: {{ .var }}
  valueFrom:
    secretKeyRef:
      name: {{ $name | quote }}
      key: {{ $ref.key | quote }}
{{- end -}}

{{/* What every long-running process reads: the ConfigMap and the Secrets. */}}
{{- define "overture.runtimeEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "overture.fullname" . }}
env:
{{ include "overture.secretEnv" (dict "root" . "var" "DATABASE_URL" "ref" "databaseUrl") | indent 2 }}
{{ include "overture.secretEnv" (dict "root" . "var" "REDIS_URL" "ref" "redisUrl") | indent 2 }}
{{ include "overture.secretEnv" (dict "root" . "var" "SECRET_KEY" "ref" "secretKey") | indent 2 }}
{{ include "overture.secretEnv" (dict "root" . "var" "OVERTURE_MASTER_KEY" "ref" "masterKey") | indent 2 }}
{{- range $optional := list (list "OVERTURE_AUDIT_KEY" "auditKey") (list "OVERTURE_SMTP_PASSWORD" "smtpPassword") (list "OVERTURE_METRICS_TOKEN" "metricsToken") }}
{{- if (index $.Values.secrets (index $optional 1)).key }}
{{ include "overture.secretEnv" (dict "root" $ "var" (index $optional 0) "ref" (index $optional 1)) | indent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The container's lockdown: no privilege, no capability, nothing written but /tmp. */}}
{{- define "overture.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  privileged: false
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* Pod-level fields every Overture pod shares; `component` picks its labels. */}}
{{- define "overture.podMeta" -}}
metadata:
  labels:
    {{- include "overture.labels" . | nindent 4 }}
    {{- with .root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
    {{- with .root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{- define "overture.podSpecCommon" -}}
serviceAccountName: {{ include "overture.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Volumes by component: /tmp for all; the audit checkpoints' claim, when named, for the
scheduler (which writes the file) and web (whose audit verification reads it).
*/}}
{{- define "overture.auditClaimMounted" -}}
{{- if and .root.Values.auditCheckpoints.existingClaim (has .component (list "web" "scheduler")) -}}true{{- end -}}
{{- end -}}

{{- define "overture.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- if include "overture.auditClaimMounted" . }}
  - name: audit-checkpoints
    persistentVolumeClaim:
      claimName: {{ .root.Values.auditCheckpoints.existingClaim }}
{{- end }}
{{- end -}}

{{- define "overture.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- if include "overture.auditClaimMounted" . }}
  - name: audit-checkpoints
    mountPath: {{ include "overture.auditCheckpointDir" . }}
    readOnly: {{ ne .component "scheduler" }}
{{- end }}
{{- end -}}

{{- define "overture.auditCheckpointDir" -}}/var/lib/overture/audit{{- end -}}

{{/* Replicas a Deployment starts with when no autoscaler owns the count. */}}
{{- define "overture.webMinReplicas" -}}
{{- if .Values.web.autoscaling.enabled -}}{{ .Values.web.autoscaling.minReplicas }}{{- else -}}{{ .Values.web.replicas }}{{- end -}}
{{- end -}}

{{/* The Redis list KEDA measures: Dramatiq's queue of step messages. */}}
{{- define "overture.stepsListName" -}}
{{- printf "%s-dramatiq:steps" .Values.config.redisNamespace -}}
{{- end -}}
