#!/usr/bin/env bash
# Print the apt line for <codename>-backports built from the machine's own sources: the same URI and signing key as
# the stanza or line that serves <codename> itself (deb822 *.sources first, then one-line sources.list / *.list).
# Usage: backports-source.sh [APT_DIR (default /etc/apt)] [CODENAME (default: VERSION_CODENAME of /etc/os-release)]
# Prints e.g. "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] <uri> bookworm-backports main";
# exits 1 with one line on stderr when no usable source is found (the caller then skips what needed backports).
set -euo pipefail
apt_dir=${1:-/etc/apt}
codename=${2:-$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")}
if [ -z "$codename" ]; then
  echo "backports-source: no distribution codename (pass one, or set VERSION_CODENAME in /etc/os-release)" >&2
  exit 1
fi

# deb822: stanzas separated by blank lines; "Field: value", continuation lines start with a space; "#" lines are comments.
from_deb822() {
  awk -v want="$codename" '
    function flush() {
      if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no" && (" " suites " ") ~ (" " want " ") && uris != "" && inline == 0) {
        split(uris, u, " ")
        if (u[1] !~ /^cdrom:/) { print u[1] "\t" signed; found = 1; exit }
      }
      types = suites = uris = signed = enabled = field = ""; inline = 0
    }
    FNR == 1 && NR > 1 { flush() }   # a file that does not end in a blank line still ends its stanza
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ {   # a continuation line: more values of the field above, or an inline key block (not reusable here)
      value = $0; gsub(/^[ \t]+|[ \t]+$/, "", value)
      if (field == "signed-by") inline = 1
      else if (field == "suites") suites = suites " " value
      else if (field == "uris") uris = uris " " value
      else if (field == "types") types = types " " value
      next
    }
    {
      i = index($0, ":"); if (i == 0) next
      field = tolower(substr($0, 1, i - 1)); value = substr($0, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", value)
      gsub(/[ \t]+/, " ", value)
      if (field == "types") types = value
      else if (field == "suites") suites = value
      else if (field == "uris") uris = value
      else if (field == "enabled") enabled = value
      else if (field == "signed-by") { signed = value; if (value == "") inline = 1 }
    }
    END { if (!found) flush() }
  ' "$@"
}

# One-line format: deb [opt=value ...] uri suite component...
from_one_line() {
  awk -v want="$codename" '
    /^[ \t]*deb[ \t]/ {
      line = $0; sub(/#.*/, "", line); n = split(line, t, /[ \t]+/); k = 1
      while (k <= n && t[k] != "deb") k++
      k++; opts = ""
      if (substr(t[k], 1, 1) == "[") {
        opts = t[k]; while (k <= n && t[k] !~ /\]$/) { k++; opts = opts " " t[k] }
        k++
      }
      uri = t[k]; suite = t[k + 1]
      if (suite != want || uri ~ /^cdrom:/) next
      gsub(/[][]/, " ", opts); signed = ""
      m = split(opts, o, / +/)
      for (j = 1; j <= m; j++) if (o[j] ~ /^signed-by=/) signed = substr(o[j], 11)
      print uri "\t" signed; exit
    }
  ' "$@"
}

shopt -s nullglob
found=""
sources=("$apt_dir"/sources.list.d/*.sources)
[ ${#sources[@]} -gt 0 ] && found=$(from_deb822 "${sources[@]}")
if [ -z "$found" ]; then
  lists=()
  [ -f "$apt_dir/sources.list" ] && lists+=("$apt_dir/sources.list")
  lists+=("$apt_dir"/sources.list.d/*.list)
  [ ${#lists[@]} -gt 0 ] && found=$(from_one_line "${lists[@]}")
fi
if [ -z "$found" ]; then
  echo "backports-source: no apt source for '$codename' with a reusable URI and key in $apt_dir/sources.list.d/*.sources or $apt_dir/sources.list" >&2
  exit 1
fi
uri=${found%%$'\t'*}; key=${found#*$'\t'}
echo "deb ${key:+[signed-by=$key] }$uri $codename-backports main"
