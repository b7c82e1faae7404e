{{- define "gossipmesh.name" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "gossipmesh.labels" -}}
app.kubernetes.io/name: gossipmesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gossipmesh.selector" -}}
app.kubernetes.io/name: gossipmesh
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gossipmesh.secret" -}}
{{- default (printf "%s-secret" (include "gossipmesh.name" .)) .Values.existingSecret -}}
{{- end -}}

{{/* The meshctl command line the probes run inside the pod. */}}
{{- define "gossipmesh.meshctl" -}}
- /meshctl
- --api
- 127.0.0.1:{{ .Values.ports.api }}
- --token-file
- /secrets/api-token
{{- end -}}
