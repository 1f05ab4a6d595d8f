#!/usr/bin/env python3
"""Writes a man page from its template and the program's own --help, so the page lists every flag
the binary takes, with the text --help gives it.

usage: make_man.py PROGRAM TEMPLATE OUTPUT
TEMPLATE is roff with one line @OPTIONS@, replaced by a .TP entry per option of PROGRAM --help
(CLI11's layout: "  -w,--workers TYPE   text", the text on the next line when the flag is long).
"""
import re
import subprocess
import sys


def roff(text):
    return text.replace('\\', '\\\\').replace('-', '\\-')


def options(help_text):
    entries, lines = [], help_text.splitlines()
    for line in lines:
        if line.startswith('  -'):  # "  FLAG [TYPE]  text": the text after two or more spaces
            parts = re.split(r'\s{2,}', line.strip(), maxsplit=1)
            entries.append([parts[0], parts[1] if len(parts) > 1 else ''])
        elif entries and line.startswith(' ' * 6) and line.strip():  # the text, on its own line
            entries[-1][1] = (entries[-1][1] + ' ' + line.strip()).strip()
    out = []
    for head, text in entries:
        flag, _, kind = head.partition(' ')
        out.append('.TP')
        out.append(f'\\fB{roff(flag)}\\fR' + (f' \\fI{roff(kind)}\\fR' if kind else ''))
        out.append(roff(text))
    return '\n'.join(out)


def main():
    program, template, output = sys.argv[1:4]
    help_text = subprocess.run([program, '--help'], capture_output=True, text=True,
                               check=True).stdout
    page = open(template, encoding='utf-8').read().replace('@OPTIONS@', options(help_text))
    with open(output, 'w', encoding='utf-8') as f:
        f.write(page)


if __name__ == '__main__':
    main()
