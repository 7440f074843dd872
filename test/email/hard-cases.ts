// Hand-written messages for what generators rarely reach: long and split
// encoded words, RFC 2231 continuations, nested multiparts, non-ASCII
// everywhere, and the damage real mail carries. Each one is parsed by us and
// by Python's email in the tests, and the two trees are compared.

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');

export const HARD_CASES: Record<string, Buffer> = {
  'long encoded words, a character split across two words, two charsets': Buffer.from(crlf(`From: =?iso-8859-1?q?Andr=E9?= Pirard <pirard@example.be>
To: =?utf-8?b?5pel5pys6Kqe44Gu5ZCN5YmN44Gn44GZ44CC44Go44Gm44KC6ZW344GE5ZCN5YmN?= <jp@example.jp>
Subject: =?utf-8?q?This_is_a_very_long_subject_with_=C3=A9_accents_that_goe?=
 =?utf-8?q?s_on_and_on_=E2=82?= =?utf-8?q?=AC_and_a_euro_split_across_words?=
 plain tail =?windows-1252?q?=93quoted=94?=
Content-Type: text/plain; charset=utf-8

body
`), 'utf8'),

  'RFC 2231 continuations, encoded and plain sections, charset and language': Buffer.from(crlf(`From: a@example.com
Subject: attachments
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: application/octet-stream;
 name*0*=iso-8859-1'fr'r%E9sum%E9%20;
 name*1="de la r";
 name*2*=%E9union.txt
Content-Disposition: attachment;
 filename*0*=utf-8''%E6%97%A5%E6%9C%AC;
 filename*1*=%E8%AA%9E%E3%81%AE;
 filename*2=".pdf"
Content-Transfer-Encoding: base64

AAECAwQ=
--XX
Content-Type: text/plain; name="=?utf-8?b?w6l0w6kudHh0?="
Content-Disposition: attachment; filename="=?utf-8?b?w6l0w6kudHh0?="

summer
--XX--
`), 'utf8'),

  'nested multiparts with message/rfc822, preamble and epilogue': Buffer.from(crlf(`From: a@example.com
To: b@example.com
Subject: nested
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=us-ascii

plain
--alt
Content-Type: multipart/related; boundary="rel"; type="text/html"

--rel
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>caf=C3=A9 <img src=3D"cid:logo"></p>
--rel
Content-Type: image/gif
Content-ID: <logo>
Content-Transfer-Encoding: base64

R0lGODlhAQABAAAAACw=
--rel--
--alt--
--outer
Content-Type: message/rfc822

From: inner@example.com
Subject: =?utf-8?q?inn=C3=A9r?=
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

inner body é
--outer--
This is the epilogue.
`), 'utf8'),

  'non-ASCII everywhere: UTF-8 headers, 8bit body, latin-1 body': Buffer.from(crlf(`From: Jürgen Groß <jürgen@bücher.example>
To: 日本 <日本@例え.jp>
Subject: Grüße aus Köln – 🙂
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße, 日本語, 🙂
--b
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus K=F6ln
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename="Résumé.pdf"
Content-Transfer-Encoding: base64

JVBERg==
--b--
`), 'utf8'),

  'missing close boundary': Buffer.from(crlf(`Subject: no close
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

first
--b
Content-Type: text/plain

second, and then the message just ends
`)),

  'boundary never appears': Buffer.from(crlf(`Subject: no start
Content-Type: multipart/mixed; boundary="nothere"

just text
`)),

  'multipart without a boundary parameter': Buffer.from(crlf(`Subject: no boundary
Content-Type: multipart/mixed

text
`)),

  'bad base64': Buffer.from(crlf(`Subject: bad base64
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC!!AwQ
`)),

  'first header line is a continuation, and a line that is not a header': Buffer.from(crlf(` folded first
Subject: after
this is not a header
Content-Type: text/plain

body
`)),

  'LF line ends, boundary with trailing white space': Buffer.from(`Subject: lf only
Content-Type: multipart/alternative; boundary=simple

--simple  
Content-Type: text/plain

one
--simple\t
Content-Type: text/html

<b>two</b>
--simple--  
`),

  'unknown charset and a transfer encoding on a multipart': Buffer.from(crlf(`Subject: =?x-unknown?q?abc?=
Content-Type: multipart/mixed; boundary="q"
Content-Transfer-Encoding: base64

--q
Content-Type: text/plain; charset=x-unknown

hello
--q--
`)),
};
