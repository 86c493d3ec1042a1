{{/* Names ------------------------------------------------------------------------- */}}

{{- define "fnmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's prefix for every object: "fnmesh" for a release named fnmesh. */}}
{{- define "fnmesh.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>": the Deployment, Service and ServiceAccount of a component. */}}
{{- define "fnmesh.component" -}}
{{- printf "%s-%s" (include "fnmesh.fullname" .root) .component }}
{{- end }}

{{- define "fnmesh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels: call with (dict "root" $ "component" "api") ------------------------------ */}}

{{- define "fnmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fnmesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "fnmesh.labels" -}}
{{ include "fnmesh.selectorLabels" . }}
helm.sh/chart: {{ include "fnmesh.chart" .root }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: fnmesh
{{- end }}

{{/* Images ------------------------------------------------------------------------ */}}

{{- define "fnmesh.platformImage" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "fnmesh.runtimeImage" -}}
{{- printf "%s:%s" .Values.runtimeImage.repository (.Values.runtimeImage.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Addresses of the platform's Services, as every component reaches them ---------- */}}

{{- define "fnmesh.apiURL" -}}
{{- printf "http://%s.%s.svc:%d" (include "fnmesh.component" (dict "root" . "component" "api")) .Release.Namespace (int .Values.api.port) }}
{{- end }}

{{- define "fnmesh.artifactURL" -}}
{{- printf "https://%s.%s.svc:%d" (include "fnmesh.component" (dict "root" . "component" "api")) .Release.Namespace (int .Values.api.artifactPort) }}
{{- end }}

{{- define "fnmesh.identityURL" -}}
{{- printf "https://%s.%s.svc:%d" (include "fnmesh.component" (dict "root" . "component" "api")) .Release.Namespace (int .Values.api.identityPort) }}
{{- end }}

{{- define "fnmesh.activatorURL" -}}
{{- printf "https://%s.%s.svc:%d" (include "fnmesh.component" (dict "root" . "component" "activator")) .Release.Namespace (int .Values.activator.port) }}
{{- end }}

{{- define "fnmesh.autoscalerURL" -}}
{{- printf "https://%s.%s.svc:%d" (include "fnmesh.component" (dict "root" . "component" "autoscaler")) .Release.Namespace (int .Values.autoscaler.port) }}
{{- end }}

{{- define "fnmesh.telemetryURL" -}}
{{- printf "https://%s.%s.svc:%d" (include "fnmesh.component" (dict "root" . "component" "telemetry")) .Release.Namespace (int .Values.telemetry.port) }}
{{- end }}

{{/* The Secret holding the mesh's certificate authority (see identity.yaml). */}}
{{- define "fnmesh.identitySecret" -}}
{{- .Values.identity.existingSecret | default (printf "%s-identity" (include "fnmesh.fullname" .)) }}
{{- end }}

{{/* A projected service-account token for the identity endpoint: a pod's credential. */}}
{{- define "fnmesh.identityTokenVolume" -}}
- name: identity-token
  projected:
    sources:
      - serviceAccountToken:
          audience: identity.fnmesh.dev
          expirationSeconds: 3600
          path: token
{{- end }}

{{- define "fnmesh.identityTokenMount" -}}
- name: identity-token
  mountPath: /var/run/secrets/fnmesh.dev/identity
  readOnly: true
{{- end }}

{{/* Environment every platform component gets (see README.md, "Component environment"). */}}
{{- define "fnmesh.commonEnv" -}}
- name: FNMESH_STORE
  value: kubernetes
- name: FNMESH_PLATFORM_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: FNMESH_WATCH_NAMESPACES
  value: {{ join "," .Values.rbac.namespaces | quote }}
- name: FNMESH_TRUST_DOMAIN
  value: {{ .Values.trustDomain | quote }}
- name: FNMESH_GATEWAY_DOMAIN
  value: {{ .Values.gateway.domain | quote }}
- name: FNMESH_API_URL
  value: {{ include "fnmesh.apiURL" . | quote }}
- name: FNMESH_ARTIFACT_URL
  value: {{ include "fnmesh.artifactURL" . | quote }}
- name: FNMESH_IDENTITY_URL
  value: {{ include "fnmesh.identityURL" . | quote }}
- name: FNMESH_ACTIVATOR_URL
  value: {{ include "fnmesh.activatorURL" . | quote }}
- name: FNMESH_AUTOSCALER_URL
  value: {{ include "fnmesh.autoscalerURL" . | quote }}
- name: FNMESH_TELEMETRY_URL
  value: {{ include "fnmesh.telemetryURL" . | quote }}
- name: FNMESH_TRUST_ANCHORS
  valueFrom:
    secretKeyRef:
      name: {{ include "fnmesh.identitySecret" . }}
      key: ca.crt
- name: FNMESH_IDENTITY_TOKEN_FILE
  value: /var/run/secrets/fnmesh.dev/identity/token
- name: FNMESH_LISTEN_HOST
  value: "0.0.0.0"
- name: FNMESH_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: FNMESH_SERVICE_ACCOUNT
  valueFrom:
    fieldRef:
      fieldPath: spec.serviceAccountName
- name: HOME
  value: /tmp
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
{{- end }}

{{/*
A platform component's Deployment. Call with a dict:
  root       the chart's context ($)
  component  "api", "gateway", ...
  values     the component's values (.Values.api, ...)
  ports      list of (dict "name" .. "port" ..) the container listens on
  env        extra environment, as YAML (a list), or ""
  volumes    extra volumes, as YAML (a list), or ""
  mounts     extra volume mounts, as YAML (a list), or ""
  probes     readinessProbe/livenessProbe, as YAML (a mapping), or ""
  strategy   the Deployment strategy type: RollingUpdate or Recreate
  replicas   how many replicas
  automountToken  false for a component that never calls the Kubernetes API (default true)
*/}}
{{- define "fnmesh.deployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $ctx := dict "root" $root "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "fnmesh.component" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "fnmesh.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ .replicas }}
  revisionHistoryLimit: 3
  strategy:
    type: {{ .strategy }}
  selector:
    matchLabels:
      {{- include "fnmesh.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "fnmesh.labels" $ctx | nindent 8 }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "fnmesh.component" $ctx }}
      automountServiceAccountToken: {{ ne (toString .automountToken) "false" }}
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "fnmesh.platformImage" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- toYaml $v.command | nindent 12 }}
          {{- with $v.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .ports }}
          ports:
            {{- range . }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          {{- end }}
          env:
            {{- include "fnmesh.commonEnv" $root | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with .probes }}
          {{- . | nindent 10 }}
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .mounts }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- with .volumes }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- with ($v.nodeSelector | default $root.Values.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($v.tolerations | default $root.Values.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($v.affinity | default $root.Values.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/* A component's ServiceAccount. Call with (dict "root" $ "component" "api"). */}}
{{- define "fnmesh.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "fnmesh.component" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "fnmesh.labels" . | nindent 4 }}
{{- end }}

{{/* A TCP probe pair on a named port. Call with the port's name. */}}
{{- define "fnmesh.tcpProbes" -}}
readinessProbe:
  tcpSocket:
    port: {{ . }}
  periodSeconds: 5
livenessProbe:
  tcpSocket:
    port: {{ . }}
  initialDelaySeconds: 10
  periodSeconds: 10
{{- end }}
