# The desktop app's window, in English. The window fills in the variables itself, so these
# messages take text only: no selectors (a count is written as a number, "Undelivered: 3").
# An operator overrides them like the mail's, in the same file of `messages_dir`.

## Shared by several pages

app-email = Email
app-password = Password
app-new-password = New password
app-new-password-again = New password again
app-code = Code
app-show = Show
app-hide = Hide
app-show-password = Show password
app-hide-password = Hide password
app-back = Back
app-back-to-signin = Back to sign in
app-settings = Settings
app-set-new-password = Set new password
app-open-mailbox = Open local mailbox
app-check-mail-title = Check your mail
app-come-back = Open the link in the message to come back to { $product }, or type the code from the message here.
app-checking-link = Checking the link…
app-link-until = This link works until { $until }.
app-finish-account = Finish creating the account
app-chosen-password-again = The password you chose for it
app-why-password-again = Asked again so that only the person who chose it can finish the account.
app-account-ready = Your account is ready. Sign in with the password you chose.
app-something-wrong = Something went wrong; try again.

## Sign in and create an account

app-signin-title = Sign in
app-signin-submit = Sign in
app-forgot-link = Forgot password?
app-register-link = Create an account
app-register-title = Create an account
app-register-submit = Create account
app-account-created = Account created. Sign in with your new password.
app-check-register-lead = A message with a link to finish the account is on its way to { $email } (unless the address has an account already: then its owner is told).
app-chosen-password = The password you chose

## Forgot password, check your mail, the typed code

app-forgot-title = Reset your password
app-forgot-lead = Enter the email of your account. If it has an account, we'll send a link and a code.
app-forgot-submit = Send reset mail
app-check-lead = If { $email } has an account, a message is on its way to it.
app-enter-code-instead = Enter a code instead
app-send-again = Send again
app-send-again-in = Send again in { $seconds } s
app-sent-again = If { $email } has an account, another message is on its way.
app-mail-to-mailbox = Mail goes to the local mailbox on this computer.
app-mail-from-server = Mail comes from your organisation's server ({ $where }). If none arrives, look in your spam folder, then ask your administrator.
app-mail-through = Mail is sent through the mail server { $where }.
app-mail-waiting = Mail is waiting to be sent: { $problem }
app-mail-undelivered = Some mail could not be delivered (undelivered messages: { $count }).
app-code-title = Enter your code
app-code-lead = Type the code from the reset mail and choose a new password.
app-code-hint = 8 letters and digits, as in the mail. Dash and case do not matter.

## The reset page a link opens, and after it

app-reset-title = New password
app-reset-for = Choose a new password for { $email }. This link works until { $until }.
app-new-link = Ask for a new link
app-done-title = Password changed
app-done-lead = Your password was changed. Sign in with the new password.

## Finishing an account

app-verify-title = Finish creating your account
app-verify-for = Finish the account for { $email }. This link works until { $until }.

## Signed in

app-home-title = You are signed in
app-home-lead = Signed in as { $email }.
app-change-title = Change password
app-current-password = Current password
app-change-submit = Change password
app-password-changed = Your password was changed.
app-sign-out = Sign out
app-signed-out = You are signed out.
app-mail-language = Language of your mail
app-mail-language-hint = The mail about this account (resets, password changes) is written in this language.
app-mail-language-save = Save
app-mail-language-saved = Your mail will be written in { $language }.

## Checks made before calling

app-enter-email = Enter your email address.
app-email-like = Enter an email address like name@example.com.
app-enter-password = Enter your password.
app-enter-new-password = Enter a new password.
app-at-least = Use at least { $min } characters.
app-type-again = Type the new password again.
app-not-same = The two passwords are not the same.
app-enter-code = Enter the code from the mail.
app-code-like = The code has 8 letters and digits, like ABCD-EFGH.
app-type-chosen-password = Type the password you chose for this account.
app-enter-current-password = Enter your current password.

## Password strength

app-strength = Strength: { $word }
app-strength-0 = Very weak
app-strength-1 = Weak
app-strength-2 = Fair
app-strength-3 = Strong
app-strength-4 = Very strong

## Settings

app-settings-server = Your organisation's { $product } server
app-settings-server-hint = Leave it to your administrator if you are not sure. Without a server, accounts live on this computer.
app-settings-ca = CA file (optional)
app-settings-ca-hint = Only for a server whose certificate comes from your organisation's own CA.
app-settings-test = Test the connection
app-settings-connect = Connect
app-settings-local = Use this computer only
app-settings-on-server = Accounts live on your organisation's server, { $url }.
app-settings-on-computer = Accounts live on this computer, in { $product }'s own store.
app-settings-enter-url = Enter the server's address, like https://rekey.example.com.
app-settings-trying = Trying the server…
app-settings-answers = The server answers: { $product } { $version }.
app-settings-connected = Connected to { $url }. Sign in with your account on that server.
app-settings-local-again = Accounts live on this computer again.
app-language = Language of this window
app-language-system = As the system ({ $language })

## The footer

app-footer-server = { $product } { $version } · Connected to { $url }
app-footer-local = { $product } { $version } · This computer · Mail: { $where }
app-footer-mailbox = local mailbox
app-footer-mail-server = mail server

## The local mailbox

app-mailbox-title = Local mailbox
app-mailbox-lead = No mail server is set up, so { $product } keeps its mail here.
app-mailbox-refresh = Refresh
app-mailbox-messages = Messages
app-mailbox-empty = No messages yet.
app-mailbox-no-subject = (no subject)
app-mailbox-to-date = To { $to } · { $date }
app-mailbox-to = To
app-mailbox-date = Date
app-mailbox-open-in = Open in { $product }

## This language's name, in itself (for the language choices)

app-language-name = English

## The app's own refusals (the core's are in errors/)

app-error-no-settings-folder = There is no folder for settings on this computer (no home directory).
app-error-settings-unwritable = The settings could not be saved in { $file } ({ $problem }); check that the folder is yours.
app-error-server-url = That server address cannot be used: { $problem }.
app-error-language-unknown = There are no words for the language “{ $language }”.
app-error-config = { $product }'s configuration cannot be used: { $problem }
app-error-restart = Something went wrong in the app; restart it.
app-error-proof-missing = Open the link from the mail, or enter your email and the code.
app-error-link = { $why } Use the link from the most recent reset mail, or type the code instead.
app-error-link-not-reset = That { $product } link does not lead to a password reset.
app-error-link-too-long = That link is far too long to be a { $product } link.
app-error-link-spaces = That link has spaces or line breaks inside it.
app-error-link-unreadable = That link could not be read.
app-error-link-not-ours = That is not a { $product } link.
app-error-link-extra = That { $product } link has parts a reset link never has.
app-error-link-two-tokens = That link carries two tokens.
app-error-link-no-token = That link has no reset token in it.
app-error-link-damaged = The token in that link is damaged; it may have been cut off by the mail program.
app-error-other-issuer-server = This link was made by { $maker }, not by the server this app is connected to ({ $url }). Open the link from a mail your organisation's server sent, or ask your administrator.
app-error-other-issuer-local = This link was made by { $maker }, but this app uses its own store on this computer. To use your organisation's server, set its address in Settings (ask your administrator for it).
app-error-maker-local = another { $product } without a public address, such as the { $product } app's own store on a computer
app-error-maker-server = another { $product } server ({ $issuer })
app-error-ca-unreadable = The CA file { $file } cannot be read ({ $problem }); check server_ca_file.
app-error-ca-empty = The CA file { $file } holds no PEM certificate; check server_ca_file.
app-error-server-setup = The connection to the server cannot be set up: { $problem }
app-error-server-not-rekey = { $url } answered, but not as a { $product } server does; check the address, or ask your administrator.
app-error-server-too-old = The { $product } server at { $url } is too old for { $what }; ask your administrator to update it.
app-error-server-error = The { $product } server at { $url } had a problem (HTTP { $status }); try again in a moment.
app-error-server-untrusted = The { $product } server at { $url } cannot be trusted: { $why }. Nothing was sent. Ask your administrator for the CA file and set server_ca_file in Settings.
app-error-certificate-expired = its certificate has expired
app-error-certificate-name = its certificate is for another name than { $host }
app-error-certificate-unknown = its certificate is not one this computer trusts
app-error-server-slow = The { $product } server at { $url } did not answer in time; try again in a moment.
app-error-server-unreachable = The { $product } server at { $url } cannot be reached. Check your network connection; if it keeps happening, ask your administrator.
app-error-switched = The server was changed in Settings meanwhile; sign in again.
app-error-mailbox-server = Mail comes from your organisation's server; check your mail program.
app-error-mailbox-smtp = Mail goes to a mail server, not the local mailbox; check your mail program.
app-error-mailbox-unreadable = The local mailbox { $folder } cannot be read; check that the folder exists and is yours.
app-error-message-missing = There is no such message in the local mailbox.
app-error-message-gone = That message is no longer in the local mailbox.
app-error-message-unreadable = That message could not be read.
app-error-this-app = this app
app-mail-language-default = The default of { $product }
