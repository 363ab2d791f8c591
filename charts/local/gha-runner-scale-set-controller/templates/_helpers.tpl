{{- define "ctl.fullname" -}}{{ .Release.Name }}-gha-rs-controller{{- end -}}
{{- /* As upstream's gha-runner-scale-set-controller.labels (0.14.2). */ -}}
{{- define "ctl.selectorLabels" -}}
app.kubernetes.io/name: gha-rs-controller
app.kubernetes.io/namespace: {{ .Release.Namespace }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "ctl.labels" -}}
helm.sh/chart: {{ printf "gha-rs-controller-%s" .Chart.Version }}
{{ include "ctl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: gha-rs-controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
