"""The style sheet of the HTML report, inlined into its page (the page loads no file)."""

CSS = """
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;--ok:#12b76a;
--bad:#d92d20;--wait:#f79009;--accent:#2e6be6}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px;font-weight:650}
header p{margin:4px 0 0;color:#b8c0cc}
nav{background:#283040;padding:6px 32px}
nav a{color:#d0d7e2;margin-right:18px;text-decoration:none;font-size:13px}
nav a:hover{color:#fff}
main{max-width:1280px;margin:0 auto;padding:8px 32px 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:16px 20px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}
h2 small{font-weight:400;color:var(--muted);font-size:13px;margin-left:6px}
.muted{color:var(--muted)}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px;
margin-bottom:16px}
.stat{background:var(--bg);border-radius:8px;padding:10px 12px}
.stat b{display:block;font-size:22px;font-weight:650}
.stat span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.splits{width:auto;min-width:360px}
.scroll{overflow-x:auto}
td.url{max-width:260px;overflow-wrap:anywhere;font-size:12px}
td.url a{color:var(--accent);text-decoration:none}
td.title{max-width:220px}
td.reason{max-width:300px;overflow-wrap:anywhere;color:var(--muted);font-size:12px}
td.reason.bad{color:var(--bad)}
tbody tr:hover{background:#fafbfc}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;
white-space:nowrap;background:#eef0f3}
.badge.ok{background:#dcfae6;color:#067647}.badge.bad{background:#fee4e2;color:#b42318}
.badge.wait{background:#fef0c7;color:#93370d}
.warning{background:#fffaeb;border:1px solid #fedf89;border-radius:8px;padding:8px 12px}
ul.changes{margin:0;padding-left:18px}
ul.changes li{margin:4px 0}
li.plus b{color:#067647}li.minus b{color:#b42318}
.chart{display:grid;gap:6px}
.bar{display:grid;grid-template-columns:140px 1fr 200px;align-items:center;gap:10px}
.bar .name{text-align:right;font-weight:600;overflow-wrap:anywhere}
.track{display:flex;height:18px;background:var(--bg);border-radius:4px;overflow:hidden}
.seg{display:block;height:100%}.seg.val{opacity:.55}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px}
figure{margin:0;background:var(--bg);border-radius:8px;overflow:hidden}
figure img{display:block;width:100%;height:auto;background:#ddd}
figcaption{padding:4px 8px 6px;font-size:12px}
figure.missing div{padding:30px 8px;text-align:center;color:var(--muted)}
.cluster{display:flex;gap:10px;align-items:flex-start;padding:10px 0;
border-top:1px solid var(--line);overflow-x:auto}
.cluster figure{flex:0 0 170px}
.cluster figure.kept{outline:3px solid var(--ok)}
.cluster figure.dropped{opacity:.9}
.clabel{flex:0 0 90px;color:var(--muted);font-size:12px}
.tag{font-weight:700}.kept .tag{color:#067647}.dropped .tag{color:#b42318}
.more{align-self:center;color:var(--muted);font-size:12px}
"""
