// Defects: what the parser found wrong in a message, recorded on the part
// (message.defects) instead of thrown, with the names of Python's
// email.errors so the two can be compared.

export type DefectKind =
  | 'NoBoundaryInMultipartDefect'
  | 'StartBoundaryNotFoundDefect'
  | 'CloseBoundaryNotFoundDefect'
  | 'FirstHeaderLineIsContinuationDefect'
  | 'MisplacedEnvelopeHeaderDefect'
  | 'MissingHeaderBodySeparatorDefect'
  | 'MultipartInvariantViolationDefect'
  | 'InvalidMultipartContentTransferEncodingDefect'
  | 'UndecodableBytesDefect'
  | 'InvalidBase64PaddingDefect'
  | 'InvalidBase64CharactersDefect'
  | 'InvalidBase64LengthDefect'
  | 'InvalidHeaderDefect'
  | 'HeaderMissingRequiredValue'
  | 'NonPrintableDefect'
  | 'InvalidDateDefect'
  | 'NestingTooDeepDefect'
  | 'HeaderTooLargeDefect'
  /** Not in Python: more parts than ParseOptions.maxParts. */
  | 'TooManyPartsDefect';

export interface Defect {
  readonly kind: DefectKind;
  /** A sentence about what was wrong and what the parser did. */
  readonly message: string;
}

export function defect(kind: DefectKind, message: string): Defect {
  return Object.freeze({ kind, message });
}
