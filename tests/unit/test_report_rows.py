"""The report's per-line and per-step markup built in Python (render._diff_html, _steps_html)
is what the template loops it replaced wrote, byte for byte, for awkward text."""

from __future__ import annotations

from markupsafe import escape

from executor.views.report.model import Step
from executor.views.report.render import DIFF_LINE, _diff_html, _steps_html, environment

# The loop commit_detail.html.j2 held before _steps_html, with the report's environment
# (autoescape, trim_blocks, lstrip_blocks).
STEPS_LOOP = '''{% for s in steps %}<tr><td class="n">{{ s.number }}</td><td><code>{{ s.tool_calls|join("\\n") }}</code></td>
<td>{% if s.error %}<div class="evidence">{{ s.error }}</div>{% endif %}{% if s.output %}<pre class="wrap">{{ s.output }}</pre>{% endif %}</td>
<td class="n">{{ s.input_tokens if s.input_tokens is not none else "–" }}/{{ s.output_tokens if s.output_tokens is not none else "–" }}</td></tr>{% endfor %}
'''

AWKWARD = "<b>&amp; \"quoted\" 'single' — ünïcode\t\x0c"


def test_steps_rows_are_the_template_loops():
    steps = [Step(number=1, tool_calls=["bash({\"command\": \"echo '<x>' && ls\"})",
                                        f"edit({AWKWARD})"],
                  output=f"line one\n{AWKWARD}\n", input_tokens=1200, output_tokens=0),
             Step(number=2, error=f"Error code: 400 - {AWKWARD}", output=""),
             Step(number=3, tool_calls=[], output="", input_tokens=None, output_tokens=7),
             Step(number=40, tool_calls=["task_done()"], error="", output="<done>")]
    loop = environment().from_string(STEPS_LOOP).render(steps=steps)
    assert str(_steps_html(steps)) == loop
    assert str(_steps_html([])) == ""


def test_diff_lines_are_escaped_and_classed_as_line_by_line():
    text = ("diff --git a/x.py b/x.py\n@@ -1,3 +1,4 @@\n-if a < b && c:\n+if a <= b and c:\n"
            f" context {AWKWARD}\r\n<<<<<<< conflict\n&first\n\n+\u2028after a separator\n")
    by_line = "\n".join(f'<span class="{DIFF_LINE.get(line[:1], "")}">{escape(line)}</span>'
                        for line in text.splitlines()) + "\n"
    assert str(_diff_html(text)) == by_line
    assert '<span class="del">-if a &lt; b &amp;&amp; c:</span>' in by_line
