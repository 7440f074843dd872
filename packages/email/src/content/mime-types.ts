// Content types for common file name extensions, so an attachment given by
// path gets a useful type without the caller naming one (Python's
// mimetypes.guess_type, for the types mail actually carries).

const TYPES: Record<string, string> = {
  txt: 'text/plain', text: 'text/plain', csv: 'text/csv', htm: 'text/html', html: 'text/html', css: 'text/css',
  md: 'text/markdown', ics: 'text/calendar', vcf: 'text/vcard', xml: 'application/xml', json: 'application/json',
  js: 'text/javascript', pdf: 'application/pdf', zip: 'application/zip', gz: 'application/gzip', tar: 'application/x-tar',
  '7z': 'application/x-7z-compressed', doc: 'application/msword', xls: 'application/vnd.ms-excel', ppt: 'application/vnd.ms-powerpoint',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text', rtf: 'application/rtf', eml: 'message/rfc822',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', svg: 'image/svg+xml',
  bmp: 'image/bmp', ico: 'image/vnd.microsoft.icon', tif: 'image/tiff', tiff: 'image/tiff', avif: 'image/avif',
  mp3: 'audio/mpeg', wav: 'audio/wav', ogg: 'audio/ogg', mp4: 'video/mp4', webm: 'video/webm', mov: 'video/quicktime',
};

/** [maintype, subtype] for a file name; application/octet-stream when unknown. */
export function guessType(filename: string | undefined): [string, string] {
  const ext = filename?.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1];
  const type = (ext && TYPES[ext]) || 'application/octet-stream';
  const [main, sub] = type.split('/') as [string, string];
  return [main, sub];
}
