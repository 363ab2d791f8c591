{{- define "rs.name" -}}{{ default .Release.Name .Values.runnerScaleSetName }}{{- end -}}
{{- define "rs.kubeModeName" -}}{{ include "rs.name" . }}-gha-rs-kube-mode{{- end -}}
{{- define "rs.labels" -}}
app.kubernetes.io/name: {{ include "rs.name" . }}
app.kubernetes.io/component: autoscaling-runner-set
actions.github.com/scale-set-name: {{ include "rs.name" . }}
actions.github.com/scale-set-namespace: {{ .Release.Namespace }}
{{- end -}}
