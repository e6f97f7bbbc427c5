"""National reporting: each patient's doses as an HL7 FHIR R4 Bundle (``fhir``), and the
quarterly WHO treatment-outcome cohort (``cohort``) as a DHIS2 data value set (``dhis2``), sent
to a DHIS2 server by ``push``."""


class ReportingError(ValueError):
    """Input a report cannot be made from (a period, a codes or org-unit file, a refusing
    server); the message says what and how to put it right."""
