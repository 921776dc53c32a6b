{{- define "stagehand.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stagehand.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "stagehand.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stagehand.serviceAccountName" -}}
{{- default (include "stagehand.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- /*
"true" when an optional Prometheus Operator object should be rendered. Takes (list VALUE
"group/version/Kind" .Capabilities): VALUE true or false decides; "auto" renders it when the
cluster serves that API, so `helm install` works with and without kube-prometheus-stack.
(`helm template` knows no cluster: pass `--api-versions monitoring.coreos.com/v1/ServiceMonitor`
or set true.)
*/ -}}
{{- define "stagehand.wants" -}}
{{- $value := index . 0 -}}
{{- $api := index . 1 -}}
{{- $capabilities := index . 2 -}}
{{- if eq (toString $value) "auto" -}}
{{- if $capabilities.APIVersions.Has $api }}true{{ end -}}
{{- else if $value -}}
true
{{- end -}}
{{- end -}}
