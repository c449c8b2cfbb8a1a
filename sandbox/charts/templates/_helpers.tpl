{{/*
Shared by every sandbox stand-in chart. What a chart renders is described by its
standin.yaml (written from sandbox/charts/standins.yaml): "template" fields there are Go
templates rendered with the context built by "standin.context", "value path" fields are
dotted paths (or lists of keys) into .Values.
*/}}

{{/* The chart's name: its base name unless nameOverride is set. */}}
{{- define "standin.name" -}}
{{- $spec := .Files.Get "standin.yaml" | fromYaml -}}
{{- default $spec.name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The usual helm fullname: fullnameOverride, else the release name when it already contains
the chart's name (or one of the chart's release aliases), else "<release>-<name>".
*/}}
{{- define "standin.fullname" -}}
{{- $spec := .Files.Get "standin.yaml" | fromYaml -}}
{{- $max := int $spec.fullname_max -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc $max | trimSuffix "-" -}}
{{- else -}}
{{- $name := default $spec.name .Values.nameOverride -}}
{{- $contained := contains $name .Release.Name -}}
{{- range $alias := $spec.release_aliases -}}
{{- if contains $alias $.Release.Name }}{{ $contained = true }}{{ end -}}
{{- end -}}
{{- if $contained -}}
{{- .Release.Name | trunc $max | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc $max | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Fills .ctx (a dict) with what the stand-in's templates may use: .Values, .Release, .Chart,
.Capabilities, .name, .fullname, .namespace and .labels (the chart's labels of every object).
*/}}
{{- define "standin.context" -}}
{{- $root := .root -}}
{{- $ctx := .ctx -}}
{{- $spec := $root.Files.Get "standin.yaml" | fromYaml -}}
{{- $_ := set $ctx "Values" $root.Values -}}
{{- $_ = set $ctx "Release" $root.Release -}}
{{- $_ = set $ctx "Chart" $root.Chart -}}
{{- $_ = set $ctx "Capabilities" $root.Capabilities -}}
{{- $_ = set $ctx "name" (include "standin.name" $root) -}}
{{- $_ = set $ctx "fullname" (include "standin.fullname" $root) -}}
{{- $_ = set $ctx "namespace" (tpl $spec.namespace $ctx) -}}
{{- $labels := dict
    "app.kubernetes.io/name" $ctx.name
    "app.kubernetes.io/instance" $root.Release.Name
    "app.kubernetes.io/version" $root.Chart.AppVersion
    "app.kubernetes.io/managed-by" $root.Release.Service
    "helm.sh/chart" (printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-")
-}}
{{- range $key, $value := $spec.labels -}}
{{- $_ = set $labels $key (tpl $value $ctx) -}}
{{- end -}}
{{- $_ = set $ctx "labels" $labels -}}
{{- end -}}

{{/*
A value as a quoted YAML string, for ConfigMap data: strings as they are, anything else as
its JSON text (so 1572864 stays 1572864 and true becomes "true").
*/}}
{{- define "standin.string" -}}
{{- if kindIs "string" . }}{{ toJson . }}{{ else }}{{ toJson (toJson .) }}{{ end -}}
{{- end -}}

{{/* "true" when a condition template (absent: always) renders to true. */}}
{{- define "standin.enabled" -}}
{{- if kindIs "invalid" .condition -}}
true
{{- else -}}
{{- tpl .condition .ctx | trim -}}
{{- end -}}
{{- end -}}

{{/*
The value at .path under .values as JSON {"v": value}; "" when any key is missing.
A path is "a.b.c" or, for keys holding dots, a list of keys.
*/}}
{{- define "standin.lookup" -}}
{{- $current := .values -}}
{{- $keys := .path -}}
{{- if kindIs "string" $keys }}{{ $keys = splitList "." $keys }}{{ end -}}
{{- range $key := $keys -}}
{{- if kindIs "map" $current }}{{ $current = get $current $key }}{{ else }}{{ $current = "" }}{{ end -}}
{{- end -}}
{{- toJson (dict "v" $current) -}}
{{- end -}}

{{/*
A map given as a value path, or as a literal map whose leaves are templates; as JSON
{"v": map}.
*/}}
{{- define "standin.map" -}}
{{- $result := dict -}}
{{- if kindIs "string" .from -}}
{{- $result = (include "standin.lookup" (dict "values" .ctx.Values "path" .from) | fromJson).v -}}
{{- else if kindIs "map" .from -}}
{{- $result = tpl (toYaml .from) .ctx | fromYaml -}}
{{- end -}}
{{- toJson (dict "v" ($result | default dict)) -}}
{{- end -}}

{{/*
A container's resources: its resources (value path or literal map) or, when those are
empty, the Bitnami-style preset named by its resources_preset value path.
*/}}
{{- define "standin.resources" -}}
{{- $resources := (include "standin.map" (dict "from" .container.resources "ctx" .ctx) | fromJson).v -}}
{{- if and (empty $resources) .container.resources_preset .presets -}}
{{- $preset := (include "standin.lookup" (dict "values" .ctx.Values "path" .container.resources_preset) | fromJson).v -}}
{{- $resources = index .presets (toString $preset) | default dict -}}
{{- end -}}
{{- toJson (dict "v" $resources) -}}
{{- end -}}

{{/* Rendered args: each template may yield several lines, one argument each. */}}
{{- define "standin.args" -}}
{{- $args := list -}}
{{- range $template := .args -}}
{{- range $line := splitList "\n" (tpl $template $.ctx) -}}
{{- if trim $line }}{{ $args = append $args (trim $line) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "v" $args) -}}
{{- end -}}

{{/* One container of a pod template, as a YAML list item. */}}
{{- define "standin.container" -}}
{{- $container := .container -}}
{{- $ctx := .ctx -}}
{{- $command := (include "standin.args" (dict "args" ($container.command | default list) "ctx" $ctx) | fromJson).v -}}
{{- $args := (include "standin.args" (dict "args" $container.args "ctx" $ctx) | fromJson).v -}}
{{- $resources := (include "standin.resources" (dict "container" $container "ctx" $ctx "presets" .presets) | fromJson).v -}}
{{- $securityContext := (include "standin.map" (dict "from" $container.security_context "ctx" $ctx) | fromJson).v -}}
{{- $env := list -}}
{{- with $container.env }}{{ $env = (include "standin.lookup" (dict "values" $ctx.Values "path" .) | fromJson).v }}{{ end -}}
{{- range $name, $template := ($container.env_vars | default dict) -}}
{{- $value := tpl $template $ctx | trim -}}
{{- if $value }}{{ $env = append $env (dict "name" $name "value" $value) }}{{ end -}}
{{- end -}}
- name: {{ .name }}
  image: {{ tpl $container.image $ctx | quote }}
  {{- with $command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $args }}
  args:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $container.ports }}
  ports:
    {{- range $name, $number := . }}
    - name: {{ $name }}
      containerPort: {{ int $number }}
      protocol: TCP
    {{- end }}
  {{- end }}
  {{- with $env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .mounts }}
  volumeMounts:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* A claim's spec from a volume entry, as JSON {"v": spec}. */}}
{{- define "standin.claimSpec" -}}
{{- $volume := .volume -}}
{{- $ctx := .ctx -}}
{{- $modes := list -}}
{{- range $mode := splitList "," (tpl $volume.access_modes $ctx) -}}
{{- if trim $mode }}{{ $modes = append $modes (trim $mode) }}{{ end -}}
{{- end -}}
{{- $spec := dict
    "accessModes" ($modes | default (list "ReadWriteOnce"))
    "resources" (dict "requests" (dict "storage" (tpl $volume.size $ctx | trim)))
-}}
{{- $class := "" -}}
{{- if $volume.storage_class }}{{ $class = tpl $volume.storage_class $ctx | trim }}{{ end -}}
{{- if eq $class "-" -}}
{{- $_ := set $spec "storageClassName" "" -}}
{{- else if $class -}}
{{- $_ := set $spec "storageClassName" $class -}}
{{- end -}}
{{- toJson (dict "v" $spec) -}}
{{- end -}}
