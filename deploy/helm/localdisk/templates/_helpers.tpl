{{/* The namespace of the namespaced objects. */}}
{{- define "localdisk.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* The labels of every object: the kustomize base's and Helm's. */}}
{{- define "localdisk.labels" -}}
app.kubernetes.io/name: localdisk
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The DaemonSet's selector and its pods' labels. */}}
{{- define "localdisk.selectorLabels" -}}
app.kubernetes.io/name: localdisk
app.kubernetes.io/component: node
{{- end -}}

{{/* kubelet's dir, without a trailing slash. */}}
{{- define "localdisk.kubeletDir" -}}
{{- .Values.kubeletDir | trimSuffix "/" -}}
{{- end -}}
