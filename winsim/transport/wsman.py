"""WS-Management SOAP envelopes for the WinRM Shell resource: parse requests, build replies and faults.

Sources: [MS-WSMV] 3.1.4.5.2 (Create of a Remote Shell), 3.1.4.11 Command, 3.1.4.12 Signal,
3.1.4.13 Send, 3.1.4.14 Receive, 4.7.x (message examples); fault codes and texts from the Windows
SDK's wsmerror.h. What pywinrm and Ansible's winrm plugin parse decided the rest: they look for any
element with Name="ShellId", any element ending in CommandId/RelatesTo/Stream/ExitCode, and exactly
one CommandState whose State ends in CommandState/Done.
"""
from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field

from lxml import etree

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

SHELL_CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
ACTION_CREATE = TRANSFER + "/Create"
ACTION_DELETE = TRANSFER + "/Delete"
ACTION_COMMAND = SHELL + "/Command"
ACTION_SEND = SHELL + "/Send"
ACTION_RECEIVE = SHELL + "/Receive"
ACTION_SIGNAL = SHELL + "/Signal"
STATE_RUNNING = SHELL + "/CommandState/Running"
STATE_DONE = SHELL + "/CommandState/Done"
SIGNAL_TERMINATE = SHELL + "/signal/terminate"
SIGNAL_CTRL_C = SHELL + "/signal/ctrl_c"
SIGNAL_CTRL_BREAK = SHELL + "/signal/ctrl_break"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
FAULT_ACTION_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
FAULT_ACTION_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"

DEFAULT_MAX_ENVELOPE = 153600  # bytes; WinRM's default MaxEnvelopeSizekb is 150 ([MS-WSMV] 4.7.1)
DEFAULT_OPERATION_TIMEOUT = 60.0  # seconds; [MS-WSMV] 4.7.1 shows PT60.000S

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def q(prefix: str, local: str) -> str:
    """Clark notation for prefix:local."""
    return "{%s}%s" % (NS[prefix], local)


class WSManFault(Exception):
    """A SOAP fault sent with HTTP 500, as WinRM sends every fault ([MS-WSMV] 2.2.4.16 WSManFault)."""

    def __init__(self, code: int, subcode: str, reason: str, value: str = "s:Sender",
                 action: str = FAULT_ACTION_WSMAN):
        super().__init__(reason)
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.value = value
        self.action = action


# Fault constructors; codes and texts from wsmerror.h (the message ids are named in each comment).
def timed_out() -> WSManFault:
    # ERROR_WSMAN_OPERATION_TIMEDOUT 0x80338029: "no output yet" for Receive ([MS-WSMV] 3.1.4.14).
    return WSManFault(2150858793, "w:TimedOut", "The WS-Management service cannot complete the operation "
                      "within the time specified in OperationTimeout.", value="s:Receiver")


def action_not_supported(action: str) -> WSManFault:
    # ERROR_WSMAN_ACTION_NOT_SUPPORTED 0x80338013, a WS-Addressing fault.
    return WSManFault(2150858771, "a:ActionNotSupported", "The WS-Management service does not support "
                      "the action specified in the request. Action: %s" % action,
                      action=FAULT_ACTION_ADDRESSING)


def resource_not_found(uri: str) -> WSManFault:
    # ERROR_WSMAN_RESOURCE_NOT_FOUND 0x80338000.
    return WSManFault(2150858752, "w:DestinationUnreachable", "The WS-Management service cannot process "
                      "the request. The service cannot find the resource identified by the resource URI "
                      "and selectors. ResourceURI: %s" % uri)


def invalid_header(detail: str) -> WSManFault:
    # ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER 0x8033800F.
    return WSManFault(2150858767, "a:InvalidMessageInformationHeader", "The WS-Management service cannot "
                      "process the request. The request contains one or more invalid SOAP headers. " + detail,
                      action=FAULT_ACTION_ADDRESSING)


def invalid_body(detail: str) -> WSManFault:
    # ERROR_WSMAN_INVALID_SOAP_BODY 0x80338027.
    return WSManFault(2150858791, "w:InvalidBody", "The WS-Management service cannot process the request "
                      "because the request packet does not have a valid SOAP body. " + detail)


def provider_failure(detail: str) -> WSManFault:
    # ERROR_WSMAN_PROVIDER_FAILURE 0x80338003: here, a bug inside winsim itself.
    return WSManFault(2150858755, "w:InternalError", "An error was encountered inside the plugin. " + detail,
                      value="s:Receiver")


def unsupported_feature(detail: str) -> WSManFault:
    # ERROR_WSMAN_UNSUPPORTED_FEATURE 0x80338042; used where winsim, not Windows, lacks the feature.
    return WSManFault(2150858818, "w:UnsupportedFeature", "The WS-Management service does not support "
                      "the specified feature. Remove the unsupported feature from the request and retry. "
                      + detail)


def shell_not_found(shell_id: str) -> WSManFault:
    # Code 2150858843 (0x8033805B) with w:InvalidSelectors is what Windows answers for a gone shell
    # (as seen in pywinrm/Ansible bug reports); the text is the one those reports quote.
    return WSManFault(2150858843, "w:InvalidSelectors", "The request for the Windows Remote Shell with "
                      "ShellId %s failed because the shell was not found on the server. Possible causes "
                      "are: the specified ShellId is incorrect or the shell no longer exists on the server. "
                      "Provide the correct ShellId or create a new shell and retry the operation." % shell_id)


def command_not_found(command_id: str) -> WSManFault:
    # [I] not verified on real Windows: the code and text for an unknown CommandId.
    return WSManFault(2150858843, "w:InvalidSelectors", "The request for the Windows Remote Shell failed "
                      "because the command with CommandId %s was not found on the server." % command_id)


@dataclass
class Request:
    """One parsed WS-Management request; only what the Shell resource needs."""
    action: str
    resource_uri: str
    message_id: str
    selectors: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT
    max_envelope_size: int = DEFAULT_MAX_ENVELOPE
    body: etree._Element | None = None

    def body_child(self, prefix: str, local: str) -> etree._Element:
        node = self.body.find(q(prefix, local)) if self.body is not None else None
        if node is None:
            raise invalid_body("Expected %s:%s in the body of %s." % (prefix, local, self.action))
        return node


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?$")


def parse_duration(text: str) -> float:
    """xs:duration as WS-Management uses it for OperationTimeout (PT20S, PT60.000S) -> seconds."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise invalid_header("OperationTimeout %r is not an xs:duration such as PT20S." % text)
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60
            + float(seconds or 0))


def _text(node: etree._Element | None) -> str:
    return (node.text or "").strip() if node is not None else ""


def parse_request(data: bytes) -> Request:
    """Bytes of a SOAP 1.2 envelope -> Request; anything malformed is a fault, never a guess."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as err:
        raise invalid_body("The XML is not well formed: %s" % err) from None
    if root.tag != q("s", "Envelope"):
        raise invalid_body("The root element is %s, not a SOAP 1.2 Envelope." % root.tag)
    header = root.find(q("s", "Header"))
    if header is None:
        raise invalid_header("The SOAP Header is missing.")
    action = _text(header.find(q("a", "Action")))
    resource_uri = _text(header.find(q("w", "ResourceURI")))
    message_id = _text(header.find(q("a", "MessageID")))
    if not action or not message_id:
        raise invalid_header("Action and MessageID are required.")
    request = Request(action=action, resource_uri=resource_uri, message_id=message_id,
                      body=root.find(q("s", "Body")))
    for selector in header.iterfind("%s/%s" % (q("w", "SelectorSet"), q("w", "Selector"))):
        request.selectors[selector.get("Name", "")] = _text(selector)
    for option in header.iterfind("%s/%s" % (q("w", "OptionSet"), q("w", "Option"))):
        request.options[option.get("Name", "")] = _text(option)
    timeout = header.find(q("w", "OperationTimeout"))
    if timeout is not None:
        request.operation_timeout = parse_duration(timeout.text or "")
    size = _text(header.find(q("w", "MaxEnvelopeSize")))
    if size:
        if not size.isdigit() or int(size) < 8192:
            raise invalid_header("MaxEnvelopeSize %r must be a number of bytes, at least 8192." % size)
        request.max_envelope_size = int(size)
    return request


def _envelope(action: str, relates_to: str, extra_ns: tuple = ()) -> tuple[etree._Element, etree._Element]:
    nsmap = {p: NS[p] for p in ("s", "a", "w") + tuple(extra_ns)}
    root = etree.Element(q("s", "Envelope"), nsmap=nsmap)
    root.set(XML_LANG, "en-US")
    header = etree.SubElement(root, q("s", "Header"))
    etree.SubElement(header, q("a", "Action")).text = action
    etree.SubElement(header, q("a", "MessageID")).text = "uuid:%s" % str(uuid.uuid4()).upper()
    etree.SubElement(header, q("a", "To")).text = ANONYMOUS
    etree.SubElement(header, q("a", "RelatesTo")).text = relates_to
    body = etree.SubElement(root, q("s", "Body"))
    return root, body


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def fault_envelope(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    root, body = _envelope(fault.action, relates_to or "uuid:00000000-0000-0000-0000-000000000000", ("f",))
    node = etree.SubElement(body, q("s", "Fault"))
    code = etree.SubElement(node, q("s", "Code"))
    etree.SubElement(code, q("s", "Value")).text = fault.value
    sub = etree.SubElement(code, q("s", "Subcode"))
    etree.SubElement(sub, q("s", "Value")).text = fault.subcode
    reason = etree.SubElement(etree.SubElement(node, q("s", "Reason")), q("s", "Text"))
    reason.set(XML_LANG, "en-US")
    reason.text = fault.reason
    detail = etree.SubElement(etree.SubElement(node, q("s", "Detail")), q("f", "WSManFault"))
    detail.set("Code", str(fault.code))
    detail.set("Machine", machine)
    etree.SubElement(detail, q("f", "Message")).text = fault.reason
    return _serialize(root)


def created_envelope(request: Request, shell_id: str, address: str, owner: str,
                     input_streams: str, output_streams: str) -> bytes:
    """CreateResponse: wxf:ResourceCreated with the ShellId selector ([MS-WSMV] 3.1.4.5.2, 4.7.1)."""
    root, body = _envelope(TRANSFER + "/CreateResponse", request.message_id, ("x", "rsp"))
    created = etree.SubElement(body, q("x", "ResourceCreated"))
    etree.SubElement(created, q("a", "Address")).text = address
    params = etree.SubElement(created, q("a", "ReferenceParameters"))
    etree.SubElement(params, q("w", "ResourceURI")).text = SHELL_CMD_URI
    selector = etree.SubElement(etree.SubElement(params, q("w", "SelectorSet")), q("w", "Selector"))
    selector.set("Name", "ShellId")
    selector.text = shell_id
    # WinRM 2.0 and later also echo the shell's properties in the body.
    shell = etree.SubElement(body, q("rsp", "Shell"))
    for name, value in (("ShellId", shell_id), ("ResourceUri", SHELL_CMD_URI), ("Owner", owner),
                        ("InputStreams", input_streams), ("OutputStreams", output_streams)):
        etree.SubElement(shell, q("rsp", name)).text = value
    return _serialize(root)


def command_envelope(request: Request, command_id: str) -> bytes:
    root, body = _envelope(SHELL + "/CommandResponse", request.message_id, ("rsp",))
    response = etree.SubElement(body, q("rsp", "CommandResponse"))
    etree.SubElement(response, q("rsp", "CommandId")).text = command_id
    return _serialize(root)


def send_envelope(request: Request) -> bytes:
    root, body = _envelope(SHELL + "/SendResponse", request.message_id, ("rsp",))
    etree.SubElement(body, q("rsp", "SendResponse"))
    return _serialize(root)


def signal_envelope(request: Request) -> bytes:
    root, body = _envelope(SHELL + "/SignalResponse", request.message_id, ("rsp",))
    etree.SubElement(body, q("rsp", "SignalResponse"))
    return _serialize(root)


def delete_envelope(request: Request) -> bytes:
    root, _body = _envelope(TRANSFER + "/DeleteResponse", request.message_id)
    return _serialize(root)


def receive_envelope(request: Request, command_id: str, streams: list[tuple[str, bytes, bool]],
                     exit_code: int | None) -> bytes:
    """ReceiveResponse ([MS-WSMV] 3.1.4.14): base64 stream chunks, then the command's state.

    streams holds (name, data, end) in order; exit_code None means the command is still running,
    otherwise the one CommandState is Done and carries ExitCode.
    """
    root, body = _envelope(SHELL + "/ReceiveResponse", request.message_id, ("rsp",))
    response = etree.SubElement(body, q("rsp", "ReceiveResponse"))
    for name, data, end in streams:
        stream = etree.SubElement(response, q("rsp", "Stream"))
        stream.set("Name", name)
        stream.set("CommandId", command_id)
        if end:
            stream.set("End", "true")
        if data:
            stream.text = base64.b64encode(data).decode("ascii")
    state = etree.SubElement(response, q("rsp", "CommandState"))
    state.set("CommandId", command_id)
    if exit_code is None:
        state.set("State", STATE_RUNNING)
    else:
        state.set("State", STATE_DONE)
        etree.SubElement(state, q("rsp", "ExitCode")).text = str(exit_code)
    return _serialize(root)
