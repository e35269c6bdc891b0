"""docker build on the agent: Dockerfile parsing, stages, the instructions' executors and the layer cache.

The pieces, in the order a build uses them: `dockerfile` reads the file
into instruction lines, `instructions` checks each one's flags and
arguments, `stages` groups them by FROM and picks what the target needs,
`shellwords` expands variables as Docker's shell lexer does, `sources`
finds COPY's files in the context or another stage and checksums them,
`imageconfig` turns the metadata instructions into config changes and
history lines, `copying` and `running` make the layers of COPY/ADD and
RUN, `cache` names each step, `steps` runs one build step by step with
docker build's classic output, and `builder` takes a build from its
context tar to its output stream (`service` serves it as Images.Build).
"""
