{{- define "rs.name" -}}{{ default .Release.Name .Values.runnerScaleSetName }}{{- end -}}
{{- define "rs.kubeModeName" -}}{{ include "rs.name" . }}-gha-rs-kube-mode{{- end -}}
{{- define "rs.managerName" -}}{{ include "rs.name" . }}-gha-rs-manager{{- end -}}
{{- /* constants.go AutoscalingRunnerSetCleanupFinalizerName (0.14.2): ARC removes it on cleanup. */ -}}
{{- define "rs.cleanupFinalizer" -}}actions.github.com/cleanup-protection{{- end -}}
{{- /* As upstream's gha-runner-scale-set.labels (0.14.2). */ -}}
{{- define "rs.labels" -}}
helm.sh/chart: {{ printf "gha-rs-%s" .Chart.Version }}
app.kubernetes.io/name: {{ include "rs.name" . }}
app.kubernetes.io/instance: {{ include "rs.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gha-rs
actions.github.com/scale-set-name: {{ include "rs.name" . }}
actions.github.com/scale-set-namespace: {{ .Release.Namespace }}
{{- end -}}
{{- define "rs.kubeMode" -}}{{ and (has (default "" .Values.containerMode.type) (list "kubernetes" "kubernetes-novolume")) (not .Values.template.spec.serviceAccountName) }}{{- end -}}
