{{/* The labels deploy/base/kustomization.yaml puts on every object. */}}
{{- define "regcred.labels" -}}
app.kubernetes.io/name: regcred-operator
app.kubernetes.io/part-of: regcred-operator
{{- end }}

{{/* What the Deployment, PodDisruptionBudget, Service and ServiceMonitor select by. */}}
{{- define "regcred.selectorLabels" -}}
app.kubernetes.io/name: regcred-operator
{{- end }}

{{/* The subject every binding grants to. */}}
{{- define "regcred.subject" -}}
- kind: ServiceAccount
  name: regcred-operator
  namespace: {{ .Release.Namespace }}
{{- end }}
