# La ventana de la aplicación de escritorio, en español. Los mismos mensajes, con las mismas
# variables, que en.ftl; la propia ventana rellena los valores como texto, así que no hay selectores.

## Compartidos por varias páginas

app-email = Correo electrónico
app-password = Contraseña
app-new-password = Contraseña nueva
app-new-password-again = Repita la contraseña nueva
app-code = Código
app-show = Mostrar
app-hide = Ocultar
app-show-password = Mostrar la contraseña
app-hide-password = Ocultar la contraseña
app-back = Atrás
app-back-to-signin = Volver a iniciar sesión
app-settings = Configuración
app-set-new-password = Establecer la contraseña nueva
app-open-mailbox = Abrir el buzón local
app-check-mail-title = Revise su correo
app-come-back = Abra el enlace del correo para volver a { $product }, o escriba aquí el código del correo.
app-checking-link = Comprobando el enlace…
app-link-until = Este enlace funciona hasta { $until }.
app-finish-account = Terminar de crear la cuenta
app-chosen-password-again = La contraseña que eligió para ella
app-why-password-again = Se pide de nuevo para que solo quien la eligió pueda terminar la cuenta.
app-account-ready = Su cuenta está lista. Inicie sesión con la contraseña que eligió.
app-something-wrong = Algo salió mal; inténtelo de nuevo.

## Iniciar sesión y crear una cuenta

app-signin-title = Iniciar sesión
app-signin-submit = Iniciar sesión
app-forgot-link = Olvidé mi contraseña
app-register-link = Crear una cuenta
app-register-title = Crear una cuenta
app-register-submit = Crear la cuenta
app-account-created = Cuenta creada. Inicie sesión con su contraseña nueva.
app-check-register-lead = Un correo con un enlace para terminar la cuenta va de camino a { $email } (salvo que la dirección ya tenga una cuenta: en ese caso se avisa a su titular).
app-chosen-password = La contraseña que eligió

## Contraseña olvidada, revisar el correo, el código escrito

app-forgot-title = Restablezca su contraseña
app-forgot-lead = Introduzca el correo electrónico de su cuenta. Si tiene una cuenta, le enviaremos un enlace y un código.
app-forgot-submit = Enviar el correo de restablecimiento
app-check-lead = Si { $email } tiene una cuenta, va de camino un correo a esa dirección.
app-enter-code-instead = Introducir un código
app-send-again = Volver a enviar
app-send-again-in = Volver a enviar en { $seconds } s
app-sent-again = Si { $email } tiene una cuenta, va de camino otro correo.
app-mail-to-mailbox = El correo va al buzón local de este ordenador.
app-mail-from-server = El correo llega desde el servidor de su organización ({ $where }). Si no llega nada, mire en su carpeta de spam y luego consulte a su administrador.
app-mail-through = El correo se envía a través del servidor de correo { $where }.
app-mail-waiting = Hay correo esperando a enviarse: { $problem }
app-mail-undelivered = No se pudo entregar parte del correo (mensajes sin entregar: { $count }).
app-code-title = Introduzca su código
app-code-lead = Escriba el código del correo de restablecimiento y elija una contraseña nueva.
app-code-hint = 8 letras y cifras, como en el correo. El guion y las mayúsculas no importan.

## La página de restablecimiento que abre un enlace, y lo que sigue

app-reset-title = Contraseña nueva
app-reset-for = Elija una contraseña nueva para { $email }. Este enlace funciona hasta { $until }.
app-new-link = Pedir un enlace nuevo
app-done-title = Contraseña cambiada
app-done-lead = Su contraseña se ha cambiado. Inicie sesión con la contraseña nueva.

## Terminar una cuenta

app-verify-title = Termine de crear su cuenta
app-verify-for = Termine la cuenta de { $email }. Este enlace funciona hasta { $until }.

## Con la sesión iniciada

app-home-title = Ha iniciado sesión
app-home-lead = Sesión iniciada como { $email }.
app-change-title = Cambiar la contraseña
app-current-password = Contraseña actual
app-change-submit = Cambiar la contraseña
app-password-changed = Su contraseña se ha cambiado.
app-sign-out = Cerrar sesión
app-signed-out = Ha cerrado sesión.
app-mail-language = Idioma de su correo
app-mail-language-hint = El correo sobre esta cuenta (restablecimientos, cambios de contraseña) se escribe en este idioma.
app-mail-language-save = Guardar
app-mail-language-saved = Su correo se escribirá en este idioma: { $language }.

## Comprobaciones antes de llamar

app-enter-email = Introduzca su dirección de correo electrónico.
app-email-like = Introduzca una dirección de correo electrónico como name@example.com.
app-enter-password = Introduzca su contraseña.
app-enter-new-password = Introduzca una contraseña nueva.
app-at-least = Use al menos { $min } caracteres.
app-type-again = Escriba de nuevo la contraseña nueva.
app-not-same = Las dos contraseñas no coinciden.
app-enter-code = Introduzca el código del correo.
app-code-like = El código tiene 8 letras y cifras, como ABCD-EFGH.
app-type-chosen-password = Escriba la contraseña que eligió para esta cuenta.
app-enter-current-password = Introduzca su contraseña actual.

## Solidez de la contraseña

app-strength = Solidez: { $word }
app-strength-0 = Muy débil
app-strength-1 = Débil
app-strength-2 = Aceptable
app-strength-3 = Fuerte
app-strength-4 = Muy fuerte

## Configuración

app-settings-server = Servidor de { $product } de su organización
app-settings-server-hint = Si no está seguro, déjelo en manos de su administrador. Sin servidor, las cuentas se guardan en este ordenador.
app-settings-ca = Archivo de CA (opcional)
app-settings-ca-hint = Solo para un servidor cuyo certificado procede de la CA propia de su organización.
app-settings-test = Probar la conexión
app-settings-connect = Conectar
app-settings-local = Usar solo este ordenador
app-settings-on-server = Las cuentas se guardan en el servidor de su organización, { $url }.
app-settings-on-computer = Las cuentas se guardan en este ordenador, en el almacén propio de { $product }.
app-settings-enter-url = Introduzca la dirección del servidor, como https://rekey.example.com.
app-settings-trying = Probando el servidor…
app-settings-answers = El servidor responde: { $product } { $version }.
app-settings-connected = Conectado a { $url }. Inicie sesión con su cuenta de ese servidor.
app-settings-local-again = Las cuentas vuelven a guardarse en este ordenador.
app-language = Idioma de esta ventana
app-language-system = Como el sistema ({ $language })

## El pie de página

app-footer-server = { $product } { $version } · Conectado a { $url }
app-footer-local = { $product } { $version } · Este ordenador · Correo: { $where }
app-footer-mailbox = buzón local
app-footer-mail-server = servidor de correo

## El buzón local

app-mailbox-title = Buzón local
app-mailbox-lead = No hay ningún servidor de correo configurado, así que { $product } guarda aquí su correo.
app-mailbox-refresh = Actualizar
app-mailbox-messages = Mensajes
app-mailbox-empty = Aún no hay mensajes.
app-mailbox-no-subject = (sin asunto)
app-mailbox-to-date = Para { $to } · { $date }
app-mailbox-to = Para
app-mailbox-date = Fecha
app-mailbox-open-in = Abrir en { $product }

## El nombre de este idioma, en el propio idioma (para elegir el idioma)

app-language-name = Español

## Las negativas propias de la aplicación (las del núcleo están en errors/)

app-error-no-settings-folder = No hay ninguna carpeta para la configuración en este ordenador (no hay carpeta personal).
app-error-settings-unwritable = No se pudo guardar la configuración en { $file } ({ $problem }); compruebe que la carpeta es suya.
app-error-server-url = Esa dirección de servidor no se puede usar: { $problem }.
app-error-language-unknown = No hay textos para el idioma «{ $language }».
app-error-config = La configuración de { $product } no se puede usar: { $problem }
app-error-restart = Algo salió mal en la aplicación; reiníciela.
app-error-proof-missing = Abra el enlace del correo, o introduzca su correo electrónico y el código.
app-error-link = { $why } Use el enlace del correo de restablecimiento más reciente, o escriba el código en su lugar.
app-error-link-not-reset = Ese enlace de { $product } no lleva a un restablecimiento de contraseña.
app-error-link-too-long = Ese enlace es demasiado largo para ser un enlace de { $product }.
app-error-link-spaces = Ese enlace tiene espacios o saltos de línea dentro.
app-error-link-unreadable = No se pudo leer ese enlace.
app-error-link-not-ours = Eso no es un enlace de { $product }.
app-error-link-extra = Ese enlace de { $product } tiene partes que un enlace de restablecimiento nunca tiene.
app-error-link-two-tokens = Ese enlace lleva dos tokens.
app-error-link-no-token = Ese enlace no contiene ningún token de restablecimiento.
app-error-link-damaged = El token de ese enlace está dañado; puede que el programa de correo lo haya cortado.
app-error-other-issuer-server = Este enlace lo creó { $maker }, no el servidor al que está conectada esta aplicación ({ $url }). Abra el enlace de un correo enviado por el servidor de su organización, o consulte a su administrador.
app-error-other-issuer-local = Este enlace lo creó { $maker }, pero esta aplicación usa su propio almacén en este ordenador. Para usar el servidor de su organización, indique su dirección en Configuración (pídasela a su administrador).
app-error-maker-local = otra instalación de { $product } sin dirección pública, como el almacén propio de la aplicación { $product } en un ordenador
app-error-maker-server = otro servidor de { $product } ({ $issuer })
app-error-ca-unreadable = No se puede leer el archivo de CA { $file } ({ $problem }); compruebe server_ca_file.
app-error-ca-empty = El archivo de CA { $file } no contiene ningún certificado PEM; compruebe server_ca_file.
app-error-server-setup = No se puede establecer la conexión con el servidor: { $problem }
app-error-server-not-rekey = { $url } respondió, pero no como lo hace un servidor de { $product }; compruebe la dirección, o consulte a su administrador.
app-error-server-too-old = El servidor de { $product } en { $url } es demasiado antiguo para { $what }; pida a su administrador que lo actualice.
app-error-server-error = El servidor de { $product } en { $url } tuvo un problema (HTTP { $status }); inténtelo de nuevo en un momento.
app-error-server-untrusted = No se puede confiar en el servidor de { $product } en { $url }: { $why }. No se ha enviado nada. Pida a su administrador el archivo de CA e indique server_ca_file en Configuración.
app-error-certificate-expired = su certificado ha caducado
app-error-certificate-name = su certificado es para un nombre distinto de { $host }
app-error-certificate-unknown = su certificado no es de los que este ordenador considera de confianza
app-error-server-slow = El servidor de { $product } en { $url } no respondió a tiempo; inténtelo de nuevo en un momento.
app-error-server-unreachable = No se puede acceder al servidor de { $product } en { $url }. Compruebe su conexión de red; si sigue ocurriendo, consulte a su administrador.
app-error-switched = El servidor se cambió en Configuración mientras tanto; vuelva a iniciar sesión.
app-error-mailbox-server = El correo llega desde el servidor de su organización; consulte su programa de correo.
app-error-mailbox-smtp = El correo va a un servidor de correo, no al buzón local; consulte su programa de correo.
app-error-mailbox-unreadable = No se puede leer el buzón local { $folder }; compruebe que la carpeta existe y es suya.
app-error-message-missing = No existe ese mensaje en el buzón local.
app-error-message-gone = Ese mensaje ya no está en el buzón local.
app-error-message-unreadable = No se pudo leer ese mensaje.
app-error-this-app = esta aplicación
app-mail-language-default = El idioma predeterminado de { $product }
